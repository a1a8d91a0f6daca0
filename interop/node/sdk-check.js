#!/usr/bin/env node
// Interop check: the Hyperledger Fabric Node SDK (fabric-client 1.4.x) against our orderer.
//
// Every step prints "PASS n: ..." or "FAIL n: ..."; the process exits 1 if any step failed and
// ends with the plain summary line "sdk-check: N passed, N failed".
//
// Usage (interop/node/run.sh passes these):
//   node sdk-check.js --orderer grpc://127.0.0.1:7050 --mspdir <admin MSP folder> --mspid SampleOrg \
//        --system-channel system-channel --channel sdkch --channel-tx sdkch.tx \
//        [--anchor-tx anchors.tx] [--genesis-file genesis.block] [--txs 30] [--outsider-mspdir <MSP folder>]
//        [--tls-ca ca.pem --tls-client-cert c.pem --tls-client-key k.pem --tls-hostname localhost]
//
// The SDK is resolved through NODE_PATH (run.sh points it at the cached install).
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

// ---------- arguments ----------
function parseArgs(argv) {
    const out = {};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (!a.startsWith('--')) {
            throw new Error(`unexpected argument ${a}`);
        }
        const v = argv[i + 1];
        if (v === undefined || v.startsWith('--')) {
            throw new Error(`${a} needs a value`);
        }
        out[a.slice(2)] = v;
        i++;
    }
    return out;
}
const args = parseArgs(process.argv.slice(2));
for (const k of ['orderer', 'mspdir', 'mspid', 'system-channel', 'channel', 'channel-tx']) {
    if (!args[k]) {
        console.error(`missing --${k}`);
        process.exit(2);
    }
}
const TXS = Number(args.txs || 30);
const WAVES = 3; // transactions are sent in waves so that the channel gets several blocks
const TIMEOUT_MS = Number(args['timeout-ms'] || 15000);

// ---------- result bookkeeping ----------
let passed = 0;
let failed = 0;
let step = 0;
function pass(msg) {
    step++;
    passed++;
    console.log(`PASS ${step}: ${msg}`);
}
function fail(msg) {
    step++;
    failed++;
    console.log(`FAIL ${step}: ${msg}`);
}
function check(cond, okMsg, badMsg) {
    if (cond) {
        pass(okMsg);
    } else {
        fail(badMsg || okMsg);
    }
    return cond;
}
function errText(e) {
    return e && e.message ? e.message : String(e);
}
// Runs one step: fn returns a PASS message or throws; a throw is a FAIL with the error.
async function stepDo(name, fn) {
    const t0 = process.hrtime.bigint();
    const ms = () => `[${Number((process.hrtime.bigint() - t0) / 1000000n)} ms]`;
    try {
        const msg = await fn();
        pass(`${name}${msg ? ': ' + msg : ''} ${ms()}`);
        return true;
    } catch (e) {
        fail(`${name}: ${errText(e)} ${ms()}`);
        return false;
    }
}
function assert(cond, msg) {
    if (!cond) {
        throw new Error(msg);
    }
}

// ---------- the SDK ----------
const Client = require('fabric-client');
const BlockDecoder = require('fabric-client/lib/BlockDecoder.js');
const clientUtils = require('fabric-client/lib/client-utils.js');
const TransactionID = require('fabric-client/lib/TransactionID.js');
const ProtoLoader = require('fabric-client/lib/ProtoLoader.js');
const SDK_DIR = path.dirname(require.resolve('fabric-client/package.json'));
const PROTOS = path.join(SDK_DIR, 'lib', 'protos');
const load = (p) => ProtoLoader.load(path.join(PROTOS, p));
const commonProto = load('common/common.proto').common;
const abProto = load('orderer/ab.proto').orderer;
const proposalProto = load('peer/proposal.proto').protos;
const responseProto = load('peer/proposal_response.proto').protos;
const chaincodeProto = load('peer/chaincode.proto').protos;
const rwsetProto = load('ledger/rwset/rwset.proto').rwset;
const kvrwsetProto = load('ledger/rwset/kvrwset/kv_rwset.proto').kvrwset;

// ---------- helpers ----------
function readMsp(dir) {
    const first = (sub) => {
        const d = path.join(dir, sub);
        const files = fs.readdirSync(d).filter((f) => !f.startsWith('.')).sort();
        assert(files.length > 0, `no file in ${d}`);
        return fs.readFileSync(path.join(d, files[0]), 'utf8');
    };
    return {cert: first('signcerts'), key: first('keystore')};
}

// DER of Fabric's block header: SEQUENCE { INTEGER number, OCTET STRING previous_hash, OCTET STRING data_hash }
function derLen(n) {
    if (n < 0x80) {
        return Buffer.from([n]);
    }
    const bytes = [];
    while (n > 0) {
        bytes.unshift(n & 0xff);
        n = Math.floor(n / 256);
    }
    return Buffer.from([0x80 | bytes.length, ...bytes]);
}
function derTlv(tag, body) {
    return Buffer.concat([Buffer.from([tag]), derLen(body.length), body]);
}
function derUint(n /* BigInt >= 0 */) {
    let hex = n.toString(16);
    if (hex.length % 2) {
        hex = '0' + hex;
    }
    let b = Buffer.from(hex, 'hex');
    if (b[0] & 0x80) {
        b = Buffer.concat([Buffer.from([0]), b]);
    }
    return derTlv(0x02, b);
}
function headerBytes(number, prevHash, dataHash) {
    return derTlv(0x30, Buffer.concat([derUint(BigInt(number)), derTlv(0x04, prevHash), derTlv(0x04, dataHash)]));
}
const sha256 = (b) => crypto.createHash('sha256').update(b).digest();
const buf = (x) => (Buffer.isBuffer(x) ? x : x.toBuffer());

function withTimeout(promise, ms, what) {
    let t;
    return Promise.race([
        promise.finally(() => clearTimeout(t)),
        new Promise((_, reject) => {
            t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
        }),
    ]);
}

// ---------- set-up ----------
async function main() {
    const client = new Client();
    client.setConfigSetting('request-timeout', TIMEOUT_MS);
    const msp = readMsp(args.mspdir);
    const tls = !!args['tls-ca'];
    const ordererOpts = {};
    if (tls) {
        ordererOpts.pem = fs.readFileSync(args['tls-ca'], 'utf8');
        if (args['tls-hostname']) {
            ordererOpts['ssl-target-name-override'] = args['tls-hostname'];
        }
        if (args['tls-client-cert']) {
            client.setTlsClientCertAndKey(fs.readFileSync(args['tls-client-cert'], 'utf8'),
                fs.readFileSync(args['tls-client-key'], 'utf8'));
        }
    }
    const url = args.orderer;
    let orderer;
    let user;

    // 1: the SDK and its native gRPC binding load
    await stepDo('fabric-client loads with its gRPC binding', async () => {
        const sdkVersion = require('fabric-client/package.json').version;
        const grpcVersion = require('grpc/package.json').version;
        require('grpc'); // throws if the native binding is missing
        return `fabric-client ${sdkVersion}, grpc ${grpcVersion}, node ${process.version}`;
    });

    // 2: identities from the MSP folder: user context (createUser) and admin (setAdminSigningIdentity)
    const identOk = await stepDo('admin identity from MSP files (createUser + setAdminSigningIdentity)', async () => {
        user = await client.createUser({
            username: 'sdk-admin',
            mspid: args.mspid,
            cryptoContent: {privateKeyPEM: msp.key, signedCertPEM: msp.cert},
            skipPersistence: true,
        });
        client.setAdminSigningIdentity(msp.key, msp.cert, args.mspid);
        const sid = client._getSigningIdentity(true);
        assert(sid.getMSPId() === args.mspid, `admin MSP id ${sid.getMSPId()}`);
        return `MSP ${args.mspid}${tls ? `, TLS${args['tls-client-cert'] ? ' with client certificate' : ''}` : ''}`;
    });
    if (!identOk) {
        return;
    }
    orderer = client.newOrderer(url, ordererOpts);

    // 3: the system channel's genesis block through Channel.getGenesisBlock
    const sysChannel = client.newChannel(args['system-channel']);
    sysChannel.addOrderer(orderer);
    await stepDo(`Channel.getGenesisBlock on ${args['system-channel']} + BlockDecoder`, async () => {
        const block = await sysChannel.getGenesisBlock({orderer});
        assert(block, 'no block returned');
        const bytes = buf(block);
        const d = BlockDecoder.decode(bytes);
        assert(d.header.number === '0', `block number ${d.header.number}`);
        assert(d.header.previous_hash === '', `genesis previous_hash ${d.header.previous_hash}`);
        assert(d.data.data.length === 1, `${d.data.data.length} envelopes`);
        const env = d.data.data[0];
        const ch = env.payload.header.channel_header;
        assert(ch.typeString === 'CONFIG', `type ${ch.typeString}`);
        assert(ch.channel_id === args['system-channel'], `channel_id ${ch.channel_id}`);
        const groups = env.payload.data.config.channel_group.groups;
        assert(groups.Orderer && groups.Consortiums, `top-level groups ${Object.keys(groups)}`);
        const ctype = groups.Orderer.values.ConsensusType.value.type;
        let same = '';
        if (args['genesis-file']) {
            const file = fs.readFileSync(args['genesis-file']);
            assert(file.equals(bytes), `the block differs from ${args['genesis-file']} (${bytes.length} vs ${file.length} bytes)`);
            same = ', byte-identical to the genesis file';
        }
        return `block 0, CONFIG, consensus ${ctype}, consortiums ${Object.keys(groups.Consortiums.groups)}${same}`;
    });

    // 4: Client.createChannel with a configtxgen channel-creation tx, signed with signChannelConfig
    const chName = args.channel;
    const channel = client.newChannel(chName);
    channel.addOrderer(orderer);
    const txBytes = fs.readFileSync(args['channel-tx']);
    let created = false;
    await stepDo(`Client.createChannel ${chName} (extractChannelConfig + signChannelConfig)`, async () => {
        const config = client.extractChannelConfig(txBytes);
        const signature = client.signChannelConfig(config);
        const res = await client.createChannel({
            name: chName, orderer, config, signatures: [signature], txId: client.newTransactionID(true),
        });
        assert(res && res.status === 'SUCCESS', `status ${res && res.status} info ${res && res.info}`);
        created = true;
        return `status ${res.status}`;
    });

    // 5: the new channel's genesis block
    let configSeq = null;
    await stepDo(`Channel.getGenesisBlock on ${chName} + BlockDecoder`, async () => {
        assert(created, 'channel was not created');
        const block = await channel.getGenesisBlock({orderer});
        const d = BlockDecoder.decodeBlock(block);
        assert(d.header.number === '0', `block number ${d.header.number}`);
        const env = d.data.data[0];
        const ch = env.payload.header.channel_header;
        assert(ch.typeString === 'CONFIG' && ch.channel_id === chName, `${ch.typeString} ${ch.channel_id}`);
        const cfg = env.payload.data.config;
        configSeq = cfg.sequence;
        const app = cfg.channel_group.groups.Application;
        assert(app && app.groups[args.mspid], `Application orgs ${app && Object.keys(app.groups)}`);
        // the channel-creation request is kept as last_update, with the SDK's signature on it
        const lu = env.payload.data.last_update;
        assert(lu && lu.payload && lu.payload.header.channel_header.type === 2, 'last_update is not a CONFIG_UPDATE');
        const sigs = lu.payload.data.signatures;
        assert(sigs.length === 1 && sigs[0].signature_header.creator.Mspid === args.mspid, `last_update signatures ${JSON.stringify(sigs.map((s) => s.signature_header.creator.Mspid))}`);
        const creatorPem = sigs[0].signature_header.creator.IdBytes.replace(/\r/g, '').trim();
        assert(creatorPem === msp.cert.replace(/\r/g, '').trim(), 'last_update signer is not the SDK admin');
        return `block 0, CONFIG sequence ${configSeq}, Application org ${args.mspid}, last_update signed by the SDK admin`;
    });

    // 6: Channel.getChannelConfigFromOrderer (newest block -> LAST_CONFIG -> config block) + loadConfigEnvelope
    await stepDo(`Channel.getChannelConfigFromOrderer + loadConfigEnvelope on ${chName}`, async () => {
        assert(created, 'channel was not created');
        const env = await channel.getChannelConfigFromOrderer();
        const items = channel.loadConfigEnvelope(env);
        const mspIds = Object.keys(channel.getMSPManager().getMSPs()).sort();
        assert(mspIds.includes(args.mspid), `MSPs ${mspIds}`);
        const mspObj = channel.getMSPManager().getMSP(args.mspid);
        assert(mspObj, 'MSP manager has no ' + args.mspid);
        const ident = await mspObj.deserializeIdentity(client._getSigningIdentity(true).serialize());
        assert(ident.getMSPId() === args.mspid, 'the MSP cannot deserialize the admin');
        return `config sequence ${env.config.sequence}, MSPs [${mspIds}], ${items.orderers.length} orderer address(es)`;
    });

    // 7: a second createChannel for the same channel is refused with Fabric's status
    await stepDo(`createChannel ${chName} again is refused`, async () => {
        assert(created, 'channel was not created');
        const config = client.extractChannelConfig(txBytes);
        const res = await client.createChannel({
            name: chName, orderer, config, signatures: [client.signChannelConfig(config)],
            txId: client.newTransactionID(true),
        });
        assert(res && res.status === 'BAD_REQUEST', `status ${res && res.status}, want BAD_REQUEST`);
        return `status ${res.status} (${res.info})`;
    });

    // 8/9: transactions through the SDK's two broadcast paths
    const certPem = msp.cert;
    const signer = user.getSigningIdentity();
    const sent = new Map(); // tx id -> {key, value, path}
    const makeResponse = (proposal, i) => {
        const key = `key-${i}`;
        const value = Buffer.from(`value-${i}-${crypto.randomBytes(8).toString('hex')}`);
        const kv = new kvrwsetProto.KVRWSet();
        kv.setWrites([new kvrwsetProto.KVWrite({key, is_delete: false, value})]);
        const ns = new rwsetProto.NsReadWriteSet({namespace: 'sdkcc', rwset: kv.toBuffer()});
        const rw = new rwsetProto.TxReadWriteSet({data_model: rwsetProto.TxReadWriteSet.DataModel.KV, ns_rwset: [ns]});
        const action = new proposalProto.ChaincodeAction({
            results: rw.toBuffer(),
            response: new responseProto.Response({status: 200, message: 'OK', payload: Buffer.from(`ok-${i}`)}),
            chaincode_id: new chaincodeProto.ChaincodeID({name: 'sdkcc', version: '1.0'}),
        });
        const proposalHash = sha256(Buffer.concat([buf(proposal.header), buf(proposal.payload)]));
        const prp = new responseProto.ProposalResponsePayload({proposal_hash: proposalHash, extension: action.toBuffer()});
        const prpBytes = prp.toBuffer();
        const endorser = signer.serialize();
        // the admin endorses as a peer would: signature over payload || endorser
        const endorsement = new responseProto.Endorsement({endorser, signature: Buffer.from(signer.sign(Buffer.concat([prpBytes, endorser])))});
        return {key, value, resp: {response: {status: 200, message: 'OK'}, payload: prpBytes, endorsement}};
    };
    const perWave = Math.max(1, Math.ceil(TXS / WAVES));

    await stepDo(`Channel.sendTransaction x${TXS} (SDK-signed, ${WAVES} waves)`, async () => {
        assert(created, 'channel was not created');
        const statuses = {};
        for (let w = 0; w < WAVES; w++) {
            const wave = [];
            for (let j = 0; j < perWave && w * perWave + j < TXS; j++) {
                const i = w * perWave + j;
                const txId = client.newTransactionID(false);
                const {proposal} = channel.generateUnsignedProposal(
                    {chaincodeId: 'sdkcc', fcn: 'put', args: [`key-${i}`], txId}, args.mspid, certPem, false);
                const {key, value, resp} = makeResponse(proposal, i);
                const id = proposal_tx_id(proposal);
                sent.set(id, {key, value, path: 'sendTransaction', fcnArg: `key-${i}`});
                wave.push(withTimeout(channel.sendTransaction({proposalResponses: [resp], proposal, txId, orderer}), TIMEOUT_MS, 'sendTransaction'));
            }
            const res = await Promise.all(wave);
            for (const r of res) {
                statuses[r.status] = (statuses[r.status] || 0) + 1;
            }
        }
        assert(Object.keys(statuses).length === 1 && statuses.SUCCESS === TXS, `statuses ${JSON.stringify(statuses)}`);
        return `${TXS} x SUCCESS`;
    });

    const OFFLINE = Math.max(1, Math.floor(TXS / 3));
    const cryptoSuite = Client.newCryptoSuite();
    const offlineKey = await cryptoSuite.importKey(msp.key, {ephemeral: true});
    await stepDo(`offline signing: generateUnsignedTransaction + sendSignedTransaction x${OFFLINE}`, async () => {
        assert(created, 'channel was not created');
        const wave = [];
        for (let j = 0; j < OFFLINE; j++) {
            const i = TXS + j;
            const {proposal} = channel.generateUnsignedProposal(
                {chaincodeId: 'sdkcc', fcn: 'put', args: [`key-${i}`]}, args.mspid, certPem, false);
            const {key, value, resp} = makeResponse(proposal, i);
            // read the tx id first: the SDK's protobufjs 5 consumes the proposal's ByteBuffers when it decodes them
            const id = proposal_tx_id(proposal);
            const payload = channel.generateUnsignedTransaction({proposalResponses: [resp], proposal});
            const payloadBytes = payload.toBuffer();
            const signature = cryptoSuite.sign(offlineKey, cryptoSuite.hash(payloadBytes));
            sent.set(id, {key, value, path: 'sendSignedTransaction', fcnArg: `key-${i}`});
            wave.push(withTimeout(channel.sendSignedTransaction({
                signedProposal: {signature, proposal_bytes: payloadBytes}, request: {}, orderer,
            }), TIMEOUT_MS, 'sendSignedTransaction'));
        }
        const res = await Promise.all(wave);
        const bad = res.filter((r) => r.status !== 'SUCCESS');
        assert(bad.length === 0, `statuses ${JSON.stringify(res.map((r) => r.status))}`);
        return `${OFFLINE} x SUCCESS`;
    });

    // 10: read the whole channel back block by block (Orderer.sendDeliver with the SDK's seek envelopes)
    const admin = client._getSigningIdentity(true);
    const deliverOne = (chId, seekStart, seekStop) => {
        const txId = new TransactionID(admin, true);
        const seekInfo = new abProto.SeekInfo();
        seekInfo.setStart(seekStart);
        seekInfo.setStop(seekStop);
        seekInfo.setBehavior(abProto.SeekInfo.SeekBehavior.BLOCK_UNTIL_READY);
        const chHeader = clientUtils.buildChannelHeader(commonProto.HeaderType.DELIVER_SEEK_INFO, chId,
            txId.getTransactionID(), 0, null, clientUtils.buildCurrentTimestamp(), client.getClientCertHash());
        const payload = new commonProto.Payload();
        payload.setHeader(clientUtils.buildHeader(admin, chHeader, txId.getNonce()));
        payload.setData(seekInfo.toBuffer());
        return orderer.sendDeliver(clientUtils.toEnvelope(clientUtils.signProposal(admin, payload)));
    };
    const specified = (n) => {
        const s = new abProto.SeekSpecified();
        s.setNumber(n);
        const p = new abProto.SeekPosition();
        p.setSpecified(s);
        return p;
    };
    const newest = () => {
        const p = new abProto.SeekPosition();
        p.setNewest(new abProto.SeekNewest());
        return p;
    };

    // Fabric's solo answers SUCCESS once an envelope is queued, ours once its block is written: either
    // way, read blocks 0, 1, 2, ... (each seek waits for its block, up to request-timeout) until every
    // acknowledged transaction has been delivered.
    const blocks = [];
    await stepDo(`Orderer.sendDeliver: every block of ${chName} + BlockDecoder.decode`, async () => {
        assert(created, 'channel was not created');
        const pending = new Set(sent.keys());
        for (let n = 0; pending.size > 0; n++) {
            assert(n <= sent.size + 1, `${pending.size} transactions still not delivered after block ${n - 1}`);
            const b = await deliverOne(chName, specified(n), specified(n));
            assert(b, `block ${n}: nothing returned`);
            const decoded = BlockDecoder.decode(buf(b));
            blocks.push({proto: b, bytes: buf(b), decoded});
            for (const env of decoded.data.data) {
                pending.delete(env.payload.header.channel_header.tx_id);
            }
        }
        const top = await deliverOne(chName, newest(), newest());
        const height = top.header.number.toNumber() + 1;
        assert(height === blocks.length, `newest block is ${height - 1}, but all transactions were in blocks 0..${blocks.length - 1}`);
        return `height ${height}`;
    });

    // 11: block numbers, hash chain, data hashes
    await stepDo('block numbers, previous_hash chain and data_hash', async () => {
        assert(blocks.length >= 2, 'no blocks');
        let prev = null;
        for (let n = 0; n < blocks.length; n++) {
            const p = blocks[n].proto;
            const num = p.header.number.toNumber();
            assert(num === n, `block ${n} has number ${num}`);
            const prevHash = buf(p.header.previous_hash);
            const dataHash = buf(p.header.data_hash);
            const want = sha256(Buffer.concat(p.data.data.map(buf)));
            assert(dataHash.equals(want), `block ${n}: data_hash ${dataHash.toString('hex')} != sha256(data) ${want.toString('hex')}`);
            if (prev) {
                const h = sha256(headerBytes(prev.num, prev.prevHash, prev.dataHash));
                assert(prevHash.equals(h), `block ${n}: previous_hash ${prevHash.toString('hex')} != hash(header ${n - 1}) ${h.toString('hex')}`);
            }
            assert(blocks[n].decoded.header.number === String(n), 'BlockDecoder number');
            assert(blocks[n].decoded.header.previous_hash === prevHash.toString('hex'), 'BlockDecoder previous_hash');
            prev = {num, prevHash, dataHash};
        }
        return `${blocks.length} blocks chain`;
    });

    // 12: every transaction is there once, decoded by BlockDecoder with its content
    await stepDo('every broadcast transaction is in a block once; BlockDecoder decodes its content', async () => {
        assert(blocks.length >= 2, 'no blocks');
        const seen = new Map();
        let txBlocks = 0;
        for (let n = 1; n < blocks.length; n++) {
            const envs = blocks[n].decoded.data.data;
            if (envs.length) {
                txBlocks++;
            }
            for (const env of envs) {
                const ch = env.payload.header.channel_header;
                assert(ch.channel_id === chName, `block ${n}: channel_id ${ch.channel_id}`);
                assert(ch.typeString === 'ENDORSER_TRANSACTION', `block ${n}: type ${ch.typeString}`);
                const want = sent.get(ch.tx_id);
                assert(want, `block ${n}: unknown tx ${ch.tx_id}`);
                assert(!seen.has(ch.tx_id), `tx ${ch.tx_id} twice (blocks ${seen.get(ch.tx_id)} and ${n})`);
                seen.set(ch.tx_id, n);
                assert(env.payload.header.signature_header.creator.Mspid === args.mspid, 'creator MSP');
                const action = env.payload.data.actions && env.payload.data.actions[0];
                assert(action, `tx ${ch.tx_id}: BlockDecoder found no action`);
                const input = action.payload.chaincode_proposal_payload.input.chaincode_spec.input.args.map((a) => a.toString());
                assert(input[0] === 'put' && input[1] === want.fcnArg, `tx ${ch.tx_id}: args ${input}`);
                const ext = action.payload.action.proposal_response_payload.extension;
                const w = ext.results.ns_rwset[0].rwset.writes[0];
                assert(ext.results.ns_rwset[0].namespace === 'sdkcc', 'namespace');
                assert(w.key === want.key && Buffer.from(w.value).equals(want.value), `tx ${ch.tx_id}: write ${w.key}`);
                assert(ext.response.status === 200 && ext.chaincode_id.name === 'sdkcc', 'chaincode response');
                const e = action.payload.action.endorsements;
                assert(e.length === 1 && e[0].endorser.Mspid === args.mspid, 'endorsements');
            }
        }
        const missing = [...sent.keys()].filter((id) => !seen.has(id));
        assert(missing.length === 0, `${missing.length} of ${sent.size} transactions missing, e.g. ${missing[0]}`);
        return `${sent.size} transactions in ${txBlocks} blocks (1..${blocks.length - 1})`;
    });

    // 13: block metadata: orderer signature verifies, LAST_CONFIG points at block 0
    await stepDo('block metadata: SIGNATURES verify with the orderer certificate, LAST_CONFIG = 0', async () => {
        assert(blocks.length >= 2, 'no blocks');
        // Fabric writes a new channel's block 0 without an orderer signature; blocks it cuts are signed.
        const block0Signed = blocks[0].decoded.metadata.metadata[0].signatures.length > 0;
        for (let n = 0; n < blocks.length; n++) {
            const p = blocks[n].proto;
            const md = blocks[n].decoded.metadata.metadata;
            assert(md[1].value.index === '0', `block ${n}: LAST_CONFIG ${md[1].value.index}`);
            if (n === 0 && !block0Signed) {
                continue;
            }
            assert(md[0].signatures.length >= 1, `block ${n}: ${md[0].signatures.length} signatures`);
            const raw = commonProto.Metadata.decode(buf(p.metadata.metadata[0]));
            const sig = commonProto.MetadataSignature.decode(buf(raw.signatures[0]));
            const creator = md[0].signatures[0].signature_header.creator;
            const signed = Buffer.concat([buf(raw.value), buf(sig.signature_header),
                headerBytes(p.header.number.toString(), buf(p.header.previous_hash), buf(p.header.data_hash))]);
            const ok = crypto.verify('sha256', signed, creator.IdBytes, buf(sig.signature));
            assert(ok, `block ${n}: orderer signature does not verify`);
        }
        const signer0 = blocks[1].decoded.metadata.metadata[0].signatures[0].signature_header.creator.Mspid;
        return `blocks 1..${blocks.length - 1} signed by ${signer0}${block0Signed ? ', block 0 too' : ' (block 0 unsigned, as in Fabric)'}`;
    });

    // 14: Client.updateChannel (anchor peers from configtxgen -outputAnchorPeersUpdate)
    if (args['anchor-tx']) {
        await stepDo('Client.updateChannel (anchor peers) + getChannelConfigFromOrderer follows LAST_CONFIG', async () => {
            assert(created, 'channel was not created');
            const config = client.extractChannelConfig(fs.readFileSync(args['anchor-tx']));
            const res = await client.updateChannel({
                name: chName, orderer, config, signatures: [client.signChannelConfig(config)],
                txId: client.newTransactionID(true),
            });
            assert(res && res.status === 'SUCCESS', `status ${res && res.status} info ${res && res.info}`);
            // the config block is the next one (BLOCK_UNTIL_READY waits for it, bounded by request-timeout)
            const cfgBlock = blocks.length;
            const top = await deliverOne(chName, specified(cfgBlock), specified(cfgBlock));
            const d = BlockDecoder.decodeBlock(top);
            assert(d.data.data[0].payload.header.channel_header.typeString === 'CONFIG', 'newest block is not the config block');
            assert(d.metadata.metadata[1].value.index === String(cfgBlock), `LAST_CONFIG ${d.metadata.metadata[1].value.index} != ${cfgBlock}`);
            const env = await channel.getChannelConfigFromOrderer();
            const items = channel.loadConfigEnvelope(env);
            assert(Number(env.config.sequence) === Number(configSeq) + 1, `sequence ${env.config.sequence}`);
            const anchors = items['anchor-peers'];
            assert(anchors.length >= 1, 'no anchor peers in the new config');
            return `config block ${cfgBlock}, sequence ${env.config.sequence}, anchor peer ${anchors[0].host}:${anchors[0].port}`;
        });
    }

    // 15: bad input gets Fabric's statuses
    await stepDo('tampered signature -> FORBIDDEN', async () => {
        const {proposal} = channel.generateUnsignedProposal(
            {chaincodeId: 'sdkcc', fcn: 'put', args: ['bad']}, args.mspid, certPem, false);
        const {resp} = makeResponse(proposal, 'bad');
        const payloadBytes = channel.generateUnsignedTransaction({proposalResponses: [resp], proposal}).toBuffer();
        const other = cryptoSuite.sign(offlineKey, cryptoSuite.hash(Buffer.concat([payloadBytes, Buffer.from('x')])));
        const res = await orderer.sendBroadcast({signature: other, payload: payloadBytes});
        assert(res.status === 'FORBIDDEN', `status ${res.status}`);
        return `status ${res.status}`;
    });
    await stepDo('transaction for a channel that does not exist -> NOT_FOUND', async () => {
        const ghost = client.newChannel('no-such-channel');
        ghost.addOrderer(orderer);
        const {proposal} = ghost.generateUnsignedProposal(
            {chaincodeId: 'sdkcc', fcn: 'put', args: ['ghost']}, args.mspid, certPem, false);
        const {resp} = makeResponse(proposal, 'ghost');
        const payloadBytes = ghost.generateUnsignedTransaction({proposalResponses: [resp], proposal}).toBuffer();
        const signature = cryptoSuite.sign(offlineKey, cryptoSuite.hash(payloadBytes));
        const res = await orderer.sendBroadcast({signature, payload: payloadBytes});
        assert(res.status === 'NOT_FOUND', `status ${res.status}`);
        return `status ${res.status}`;
    });
    await stepDo('payload that is not a Payload -> BAD_REQUEST', async () => {
        const junk = Buffer.from([0x0a, 0xff, 0xff]);
        const res = await orderer.sendBroadcast({signature: Buffer.from('x'), payload: junk});
        assert(res.status === 'BAD_REQUEST', `status ${res.status}`);
        return `status ${res.status}`;
    });
    await stepDo('Deliver on a channel that does not exist -> NOT_FOUND', async () => {
        try {
            await deliverOne('no-such-channel', specified(0), specified(0));
        } catch (e) {
            assert(/NOT_FOUND/.test(errText(e)), `error ${errText(e)}`);
            return errText(e);
        }
        throw new Error('a block was returned');
    });
    await stepDo('Deliver past the end with FAIL_IF_NOT_READY -> NOT_FOUND', async () => {
        const txId = new TransactionID(admin, true);
        const seekInfo = new abProto.SeekInfo();
        seekInfo.setStart(specified(1000000));
        seekInfo.setStop(specified(1000000));
        seekInfo.setBehavior(abProto.SeekInfo.SeekBehavior.FAIL_IF_NOT_READY);
        const chHeader = clientUtils.buildChannelHeader(commonProto.HeaderType.DELIVER_SEEK_INFO, chName,
            txId.getTransactionID(), 0, null, clientUtils.buildCurrentTimestamp(), client.getClientCertHash());
        const payload = new commonProto.Payload();
        payload.setHeader(clientUtils.buildHeader(admin, chHeader, txId.getNonce()));
        payload.setData(seekInfo.toBuffer());
        try {
            await orderer.sendDeliver(clientUtils.toEnvelope(clientUtils.signProposal(admin, payload)));
        } catch (e) {
            assert(/NOT_FOUND/.test(errText(e)), `error ${errText(e)}`);
            return errText(e);
        }
        throw new Error('a block was returned');
    });

    await stepDo('envelope larger than AbsoluteMaxBytes -> BAD_REQUEST', async () => {
        // the channel's BatchSize.AbsoluteMaxBytes, from its genesis block as BlockDecoder decoded it
        assert(blocks.length > 0, 'no blocks');
        const cfg = blocks[0].decoded.data.data[0].payload.data.config;
        const max = Number(cfg.channel_group.groups.Orderer.values.BatchSize.value.absolute_max_bytes);
        assert(max > 0 && max <= 64 * 1024 * 1024, `AbsoluteMaxBytes ${max}`);
        const {proposal} = channel.generateUnsignedProposal(
            {chaincodeId: 'sdkcc', fcn: 'put', args: ['big'], argbytes: Buffer.alloc(max + 1024, 7)}, args.mspid, certPem, false);
        const {resp} = makeResponse(proposal, 'big');
        const payloadBytes = channel.generateUnsignedTransaction({proposalResponses: [resp], proposal}).toBuffer();
        const signature = cryptoSuite.sign(offlineKey, cryptoSuite.hash(payloadBytes));
        const res = await orderer.sendBroadcast({signature, payload: payloadBytes});
        assert(res.status === 'BAD_REQUEST', `status ${res.status}`);
        return `${payloadBytes.length} bytes > ${max}: status ${res.status}`;
    });

    if (args['outsider-mspdir']) {
        // an identity from a CA the channel does not know, claiming the member org's MSP ID
        const out = readMsp(args['outsider-mspdir']);
        const oc = new Client();
        oc.setConfigSetting('request-timeout', TIMEOUT_MS);
        if (tls && args['tls-client-cert']) {
            oc.setTlsClientCertAndKey(fs.readFileSync(args['tls-client-cert'], 'utf8'),
                fs.readFileSync(args['tls-client-key'], 'utf8'));
        }
        oc.setAdminSigningIdentity(out.key, out.cert, args.mspid);
        const oOrderer = oc.newOrderer(url, ordererOpts);
        const oChannel = oc.newChannel(chName);
        oChannel.addOrderer(oOrderer);
        await stepDo('outsider (unknown CA): Deliver -> FORBIDDEN', async () => {
            try {
                await oChannel.getGenesisBlock({orderer: oOrderer});
            } catch (e) {
                assert(/FORBIDDEN/.test(errText(e)), `error ${errText(e)}`);
                return errText(e);
            }
            throw new Error('a block was returned');
        });
        await stepDo('outsider (unknown CA): Broadcast -> FORBIDDEN', async () => {
            const osid = oc._getSigningIdentity(true);
            const {proposal} = oChannel.generateUnsignedProposal(
                {chaincodeId: 'sdkcc', fcn: 'put', args: ['outsider']}, args.mspid, out.cert, true);
            const {resp} = makeResponse(proposal, 'outsider');
            const payloadBytes = oChannel.generateUnsignedTransaction({proposalResponses: [resp], proposal}).toBuffer();
            const res = await oOrderer.sendBroadcast({signature: Buffer.from(osid.sign(payloadBytes)), payload: payloadBytes});
            assert(res.status === 'FORBIDDEN', `status ${res.status}`);
            return `status ${res.status}`;
        });
        oOrderer.close();
    }

    if (tls && args['tls-client-cert']) {
        await stepDo('mutual TLS: an SDK client without a client certificate gets no block', async () => {
            const nc = new Client();
            nc.setConfigSetting('request-timeout', 5000);
            nc.setAdminSigningIdentity(msp.key, msp.cert, args.mspid);
            const nOrderer = nc.newOrderer(url, ordererOpts);
            const nChannel = nc.newChannel(args['system-channel']);
            try {
                await nChannel.getGenesisBlock({orderer: nOrderer});
            } catch (e) {
                return errText(e);
            } finally {
                nOrderer.close();
            }
            throw new Error('a block was returned');
        });
    }

    orderer.close();
}

// the tx id that the SDK put in a proposal's channel header
function proposal_tx_id(proposal) {
    const header = commonProto.Header.decode(buf(proposal.header));
    return commonProto.ChannelHeader.decode(buf(header.channel_header)).tx_id;
}

const overall = setTimeout(() => {
    fail(`the whole run took longer than ${4 * TIMEOUT_MS + 60000} ms`);
    finish();
}, 4 * TIMEOUT_MS + 60000);
function finish() {
    clearTimeout(overall);
    console.log(`sdk-check: ${passed} passed, ${failed} failed`);
    process.exit(failed === 0 && passed > 0 ? 0 : 1);
}
main().catch((e) => {
    fail(`unexpected error: ${e && e.stack ? e.stack : e}`);
}).finally(finish);
