//! The real `orderer` binary on adverse storage.
//!
//! * A really full filesystem: the ledger lives on a small tmpfs that the
//!   test fills with a ballast file. The chain stalls (Broadcast answers
//!   SERVICE_UNAVAILABLE, Deliver keeps serving the persisted blocks, the
//!   log says ENOSPC and names the block file), and resumes when the ballast
//!   is removed, without losing the envelope that was in flight.
//!   Mounting needs root (or CAP_SYS_ADMIN); the test fails, never skips,
//!   when it cannot mount.
//! * A corrupted record in the middle of a block file: the node refuses to
//!   start and says which channel, file and offset.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fabric_protos::common::Status;
use fabric_protos::orderer::{seek_position, SeekInfo, SeekNewest, SeekOldest, SeekPosition};
use support::*;

fn seek_all() -> SeekInfo {
    SeekInfo {
        start: Some(SeekPosition {
            r#type: Some(seek_position::Type::Oldest(SeekOldest {})),
        }),
        stop: Some(SeekPosition {
            r#type: Some(seek_position::Type::Newest(SeekNewest {})),
        }),
        behavior: 0,
        error_response: 0,
    }
}

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "this test needs to mount a tmpfs (run as root or with CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes 4 KiB chunks to `path` until the filesystem is full.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = [0x5Au8; 4096];
    let mut written = 0;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "{e}");
                break;
            }
        }
    }
    let _ = f.sync_all();
    written
}

fn log_text(node: &Node) -> String {
    std::fs::read_to_string(&node.log).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stalls_broadcast_keeps_deliver_and_resumes_without_loss() {
    // One envelope per block, 8 KiB payloads: each append needs new pages.
    let net = net(50, 1, 1 << 20);
    let mnt = net.dir.path().join("mnt");
    let _tmpfs = Tmpfs::mount(&mnt, "4m");
    let ledger = mnt.join("ledger");
    let port = free_port();
    let mut node = Node::start(&net, &ledger, port);
    let mut client = node.client().await;
    let payload = |i: u8| vec![i; 8192];

    for i in 0..3u8 {
        let r = broadcast(&mut client, vec![tx(&net.client, CHANNEL, payload(i))]).await;
        assert_eq!(r[0].status, Status::Success as i32);
    }
    let (blocks, status) = deliver(&mut client, &net.client, CHANNEL, seek_all()).await;
    assert_eq!((blocks.len(), status), (4, Some(Status::Success)));

    // Fill the filesystem; the next append fails with ENOSPC.
    let ballast = mnt.join("ballast");
    let filled = fill(&ballast);
    assert!(filled > 0);
    let stuck_env = tx(&net.client, CHANNEL, payload(100));
    let mut stuck_client = node.client().await;
    let stuck = tokio::spawn(async move { broadcast(&mut stuck_client, vec![stuck_env]).await });

    // The append fails and is logged: at error level, naming the file and
    // the errno.
    let deadline = Instant::now() + Duration::from_secs(20);
    let line = loop {
        let log = log_text(&node);
        if let Some(l) = log.lines().find(|l| l.contains("os error 28")) {
            break l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no ENOSPC line in the log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("orderer log: {line}");
    assert!(line.contains("-> ERRO "), "{line}");
    assert!(line.contains("blockfile_000000"), "{line}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The chain is stalled: new Broadcasts get SERVICE_UNAVAILABLE.
    let r = broadcast(&mut client, vec![tx(&net.client, CHANNEL, payload(7))]).await;
    assert_eq!(r[0].status, Status::ServiceUnavailable as i32, "{r:?}");
    assert!(
        r[0].info.contains("No space left on device"),
        "{:?}",
        r[0].info
    );
    eprintln!("Broadcast while the disk is full: {:?}", r[0]);
    // Deliver keeps serving what is persisted.
    let (blocks, status) = deliver(&mut client, &net.client, CHANNEL, seek_all()).await;
    assert_eq!((blocks.len(), status), (4, Some(Status::Success)));
    // The stuck envelope is not acknowledged while its block is not durable.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!stuck.is_finished(), "acknowledged while the disk is full");
    assert!(node.alive());

    // Space returns: the stuck envelope is written and acknowledged.
    std::fs::remove_file(&ballast).unwrap();
    let r = tokio::time::timeout(Duration::from_secs(20), stuck)
        .await
        .expect("stuck envelope not answered after space returned")
        .unwrap();
    assert_eq!(r[0].status, Status::Success as i32, "{r:?}");
    let r = broadcast(&mut client, vec![tx(&net.client, CHANNEL, payload(9))]).await;
    assert_eq!(r[0].status, Status::Success as i32, "{r:?}");

    let (blocks, status) = deliver(&mut client, &net.client, CHANNEL, seek_all()).await;
    assert_eq!(status, Some(Status::Success));
    verify_chain(&blocks, net.org.ca_cert_pem());
    let datas: Vec<Vec<u8>> = blocks[1..]
        .iter()
        .flat_map(block_payloads)
        .map(|p| p.last().copied().map_or(vec![], |b| vec![b]))
        .collect();
    // Every acknowledged envelope is there exactly once; the refused one
    // is not.
    assert_eq!(blocks.len(), 6);
    assert!(!datas.iter().any(|d| d.as_slice() == [7]), "{datas:?}");
    for want in [0u8, 1, 2, 100, 9] {
        assert_eq!(
            datas.iter().filter(|d| d.as_slice() == [want]).count(),
            1,
            "payload {want}: {datas:?}"
        );
    }

    // After a restart on the same filesystem the chain is intact.
    node.kill9();
    let node = Node::start(&net, &ledger, port);
    let mut client = node.client().await;
    let (again, status) = deliver(&mut client, &net.client, CHANNEL, seek_all()).await;
    assert_eq!(status, Some(Status::Success));
    assert_eq!(again, blocks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_record_in_the_middle_of_a_block_file_stops_the_node_with_its_location() {
    let net = net(50, 1, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let port = free_port();
    let mut node = Node::start(&net, &ledger, port);
    let mut client = node.client().await;
    for i in 0..6u8 {
        let r = broadcast(&mut client, vec![tx(&net.client, CHANNEL, vec![i; 100])]).await;
        assert_eq!(r[0].status, Status::Success as i32);
    }
    node.kill9();

    // Flip one byte inside the body of block 3 (of 7).
    let file = fabric_ledger::channel_dir(&ledger, CHANNEL).join(fabric_ledger::block_file_name(0));
    let mut bytes = std::fs::read(&file).unwrap();
    let scan = fabric_ledger::scan_records(&bytes, u32::MAX);
    assert_eq!(scan.records.len(), 7);
    let victim = scan.records[3];
    let at = victim.body_offset() + u64::from(victim.body_len) / 2;
    bytes[at as usize] ^= 0xFF;
    std::fs::write(&file, &bytes).unwrap();

    let port = free_port();
    let mut node = Node::start_env(&net, &ledger, port, "SampleOrg", true, &[], false);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = node.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "orderer kept running on a corrupted ledger:\n{}",
            log_text(&node)
        );
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "orderer listens although its ledger is corrupted"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "exit status {status}");
    let log = log_text(&node);
    eprintln!("orderer exited ({status}):\n{log}");
    assert!(log.contains(&format!("channel {CHANNEL}")), "{log}");
    assert!(log.contains(&file.display().to_string()), "{log}");
    assert!(log.contains(&format!("offset {}", victim.offset)), "{log}");
    assert!(log.contains("corrupt"), "{log}");
    // Nothing was changed on disk: the operator can inspect the file.
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
}
