//! Policy rule strings: the signature policy DSL (`OR('Org1MSP.member')`,
//! `AND(...)`, `OutOf(2, ...)`) and implicit meta rules (`ANY Readers`).
//!
//! Semantics follow Fabric's `policydsl.FromString`: gate names are accepted
//! in the spellings `And`/`and`/`AND`, `Or`/`or`/`OR`, `OutOf`/`outof`/`OUTOF`;
//! principals are quoted `<MSPID>.<role>` with role one of `admin`, `member`,
//! `client`, `peer`, `orderer`; the threshold `t` of `OutOf(t, ...)` must lie
//! in `0..=n+1`. Identities are numbered the way Fabric's evaluator does:
//! the principals of nested gates first (left to right, depth first), then
//! the direct principals of the enclosing gate.

use fabric_protos::common::{
    implicit_meta_policy, msp_principal, msp_role, signature_policy, ImplicitMetaPolicy,
    MspPrincipal, MspRole, SignaturePolicy, SignaturePolicyEnvelope,
};
use prost::Message;

use crate::error::{Error, Result};

const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Str(String),
    Num(f64),
    Call(Gate, Vec<Arg>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    And,
    Or,
    OutOf,
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

fn perr(msg: impl Into<String>) -> Error {
    Error::Policy(msg.into())
}

impl<'a> Parser<'a> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && (self.s[self.pos] as char).is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<()> {
        match self.peek() {
            Some(x) if x == c => {
                self.pos += 1;
                Ok(())
            }
            Some(x) => Err(perr(format!(
                "unexpected '{}' at position {}, expected '{}'",
                x as char, self.pos, c as char
            ))),
            None => Err(perr("Unexpected end of expression")),
        }
    }

    fn parse_expr(&mut self) -> Result<Arg> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(perr("policy expression nested too deeply"));
        }
        let r = self.parse_expr_inner();
        self.depth -= 1;
        r
    }

    fn parse_expr_inner(&mut self) -> Result<Arg> {
        match self.peek() {
            None => Err(perr("Unexpected end of expression")),
            Some(q @ (b'\'' | b'"')) => {
                self.pos += 1;
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos] != q {
                    if self.s[self.pos] == b'\\' {
                        self.pos += 1;
                    }
                    self.pos += 1;
                }
                if self.pos >= self.s.len() {
                    return Err(perr("Unclosed string literal"));
                }
                let raw = &self.s[start..self.pos];
                self.pos += 1;
                let text = String::from_utf8_lossy(raw)
                    .replace(&format!("\\{}", q as char), &(q as char).to_string());
                Ok(Arg::Str(text))
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'.' => {
                let start = self.pos;
                self.pos += 1;
                while self.pos < self.s.len()
                    && (self.s[self.pos].is_ascii_digit() || self.s[self.pos] == b'.')
                {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
                text.parse::<f64>()
                    .map(Arg::Num)
                    .map_err(|_| perr(format!("invalid number '{text}'")))
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.pos;
                while self.pos < self.s.len()
                    && (self.s[self.pos].is_ascii_alphanumeric() || self.s[self.pos] == b'_')
                {
                    self.pos += 1;
                }
                let name = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
                let gate = match name {
                    "And" | "and" | "AND" => Gate::And,
                    "Or" | "or" | "OR" => Gate::Or,
                    "OutOf" | "outof" | "OUTOF" => Gate::OutOf,
                    _ => {
                        // Take the whole token (e.g. `A.member`) for the message.
                        let mut end = self.pos;
                        while end < self.s.len()
                            && !matches!(self.s[end], b',' | b'(' | b')')
                            && !(self.s[end] as char).is_ascii_whitespace()
                        {
                            end += 1;
                        }
                        let tok = String::from_utf8_lossy(&self.s[start..end]);
                        return Err(perr(format!("unrecognized token '{tok}' in policy string")));
                    }
                };
                self.expect(b'(')?;
                let mut args = Vec::new();
                if self.peek() != Some(b')') {
                    loop {
                        args.push(self.parse_expr()?);
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b')') => break,
                            Some(x) => {
                                return Err(perr(format!(
                                    "unexpected '{}' at position {}",
                                    x as char, self.pos
                                )))
                            }
                            None => return Err(perr("Unexpected end of expression")),
                        }
                    }
                }
                self.expect(b')')?;
                Ok(Arg::Call(gate, args))
            }
            Some(c) => Err(perr(format!(
                "unexpected '{}' at position {}",
                c as char, self.pos
            ))),
        }
    }
}

const ROLES: [(&str, msp_role::MspRoleType); 5] = [
    ("admin", msp_role::MspRoleType::Admin),
    ("member", msp_role::MspRoleType::Member),
    ("client", msp_role::MspRoleType::Client),
    ("peer", msp_role::MspRoleType::Peer),
    ("orderer", msp_role::MspRoleType::Orderer),
];

/// Splits `<MSPID>.<role>` like Fabric's regex `^([[:alnum:].-]+)([.])(role)$`.
fn parse_principal(s: &str) -> Option<(String, msp_role::MspRoleType)> {
    let dot = s.rfind('.')?;
    let (msp, role) = (&s[..dot], &s[dot + 1..]);
    if msp.is_empty()
        || !msp
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return None;
    }
    ROLES
        .iter()
        .find(|(name, _)| *name == role)
        .map(|(_, r)| (msp.to_string(), *r))
}

/// The `MSPPrincipal` for a role of an MSP.
pub fn role_principal(mspid: &str, role: msp_role::MspRoleType) -> MspPrincipal {
    MspPrincipal {
        principal_classification: msp_principal::Classification::Role as i32,
        principal: MspRole {
            msp_identifier: mspid.to_string(),
            role: role as i32,
        }
        .encode_to_vec(),
    }
}

fn signed_by(i: i32) -> SignaturePolicy {
    SignaturePolicy {
        r#type: Some(signature_policy::Type::SignedBy(i)),
    }
}

fn n_out_of(n: i32, rules: Vec<SignaturePolicy>) -> SignaturePolicy {
    SignaturePolicy {
        r#type: Some(signature_policy::Type::NOutOf(signature_policy::NOutOf {
            n,
            rules,
        })),
    }
}

fn eval(gate: Gate, args: &[Arg], ids: &mut Vec<MspPrincipal>) -> Result<SignaturePolicy> {
    let (t, principals): (i64, &[Arg]) = match gate {
        Gate::And => (args.len() as i64, args),
        Gate::Or => (1, args),
        Gate::OutOf => {
            let first = args
                .first()
                .ok_or_else(|| perr("expected at least two arguments to NOutOf. Given 0"))?;
            let t = match first {
                Arg::Num(n) if n.is_finite() => *n as i64,
                Arg::Str(s) => s
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| perr(format!("unrecognized token '{s}' in policy string")))?,
                _ => return Err(perr("unrecognized type, expected a number")),
            };
            (t, &args[1..])
        }
    };
    if principals.is_empty() {
        return Err(perr(format!(
            "expected at least two arguments to NOutOf. Given {}",
            principals.len() + 1
        )));
    }
    // Nested gates are evaluated first (their identities come first) ...
    let mut nested = Vec::new();
    for a in principals {
        if let Arg::Call(g, sub) = a {
            nested.push(Some(eval(*g, sub, ids)?));
        } else {
            nested.push(None);
        }
    }
    // ... then the direct principals, in order.
    let mut rules = Vec::with_capacity(principals.len());
    for (a, n) in principals.iter().zip(nested) {
        match (a, n) {
            (_, Some(p)) => rules.push(p),
            (Arg::Str(s), None) => {
                let (msp, role) = parse_principal(s)
                    .ok_or_else(|| perr(format!("error parsing principal {s}")))?;
                let id = ids.len() as i32;
                ids.push(role_principal(&msp, role));
                rules.push(signed_by(id));
            }
            (Arg::Num(n), None) => {
                return Err(perr(format!(
                    "unrecognized type, expected a principal or a policy, got number {n}"
                )))
            }
            (Arg::Call(..), None) => unreachable!("nested calls are always evaluated"),
        }
    }
    let n = rules.len() as i64;
    if t < 0 || t > n + 1 {
        return Err(perr(format!("invalid t-out-of-n predicate, t {t}, n {n}")));
    }
    Ok(n_out_of(t as i32, rules))
}

/// Parses a signature policy rule (Fabric's `policydsl.FromString`).
pub fn signature_policy_from_str(rule: &str) -> Result<SignaturePolicyEnvelope> {
    let mut p = Parser {
        s: rule.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let expr = p.parse_expr()?;
    if p.peek().is_some() {
        return Err(perr(format!(
            "unexpected trailing input at position {} in policy string '{rule}'",
            p.pos
        )));
    }
    let (gate, args) = match expr {
        Arg::Call(g, a) => (g, a),
        _ => return Err(perr(format!("invalid policy string '{rule}'"))),
    };
    let mut ids = Vec::new();
    let policy = eval(gate, &args, &mut ids)?;
    Ok(SignaturePolicyEnvelope {
        version: 0,
        rule: Some(policy),
        identities: ids,
    })
}

/// Parses an implicit meta rule such as `ANY Readers` or `MAJORITY Admins`
/// (Fabric's `policies.ImplicitMetaFromString`: exactly two tokens separated
/// by a single space).
pub fn implicit_meta_from_str(rule: &str) -> Result<ImplicitMetaPolicy> {
    let args: Vec<&str> = rule.split(' ').collect();
    if args.len() != 2 {
        return Err(perr(format!(
            "expected two space separated tokens, but got {}",
            args.len()
        )));
    }
    let r = match args[0] {
        "ANY" => implicit_meta_policy::Rule::Any,
        "ALL" => implicit_meta_policy::Rule::All,
        "MAJORITY" => implicit_meta_policy::Rule::Majority,
        other => {
            return Err(perr(format!(
                "unknown rule type '{other}', expected ALL, ANY, or MAJORITY"
            )))
        }
    };
    Ok(ImplicitMetaPolicy {
        sub_policy: args[1].to_string(),
        rule: r as i32,
    })
}

/// A one-signature policy for a role of an MSP (`SignedByMspMember`,
/// `SignedByMspAdmin`, ...).
pub fn signed_by_msp_role(mspid: &str, role: msp_role::MspRoleType) -> SignaturePolicyEnvelope {
    SignaturePolicyEnvelope {
        version: 0,
        rule: Some(n_out_of(1, vec![signed_by(0)])),
        identities: vec![role_principal(mspid, role)],
    }
}

/// Fabric's `AcceptAllPolicy`: zero out of no rules.
pub fn accept_all_policy() -> SignaturePolicyEnvelope {
    SignaturePolicyEnvelope {
        version: 0,
        rule: Some(n_out_of(0, vec![])),
        identities: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msp_role::MspRoleType as R;

    fn p(m: &str, r: R) -> MspPrincipal {
        role_principal(m, r)
    }

    #[test]
    fn simple_or() {
        let e = signature_policy_from_str("OR('Org1MSP.member')").unwrap();
        assert_eq!(e.identities, vec![p("Org1MSP", R::Member)]);
        assert_eq!(e.rule, Some(n_out_of(1, vec![signed_by(0)])));
        assert_eq!(e, signed_by_msp_role("Org1MSP", R::Member));
    }

    #[test]
    fn nested_numbering_matches_fabric() {
        let e = signature_policy_from_str("OR('A.member', AND('B.member', 'C.member'))").unwrap();
        assert_eq!(
            e.identities,
            vec![p("B", R::Member), p("C", R::Member), p("A", R::Member)]
        );
        assert_eq!(
            e.rule,
            Some(n_out_of(
                1,
                vec![signed_by(2), n_out_of(2, vec![signed_by(0), signed_by(1)])]
            ))
        );

        let e =
            signature_policy_from_str("OR(AND('A.member', 'B.member'), OR('C.admin', 'D.member'))")
                .unwrap();
        assert_eq!(
            e.identities,
            vec![
                p("A", R::Member),
                p("B", R::Member),
                p("C", R::Admin),
                p("D", R::Member)
            ]
        );
        assert_eq!(
            e.rule,
            Some(n_out_of(
                1,
                vec![
                    n_out_of(2, vec![signed_by(0), signed_by(1)]),
                    n_out_of(1, vec![signed_by(2), signed_by(3)])
                ]
            ))
        );
    }

    #[test]
    fn outof_and_roles() {
        let e = signature_policy_from_str("OutOf(2, 'A.peer', \"B.client\", 'C.orderer')").unwrap();
        assert_eq!(
            e.identities,
            vec![p("A", R::Peer), p("B", R::Client), p("C", R::Orderer)]
        );
        assert_eq!(
            e.rule,
            Some(n_out_of(2, vec![signed_by(0), signed_by(1), signed_by(2)]))
        );
        let e = signature_policy_from_str("outof('1', 'A.member', 'B.member')").unwrap();
        assert_eq!(e.rule, Some(n_out_of(1, vec![signed_by(0), signed_by(1)])));
        assert!(signature_policy_from_str("OutOf(0, 'A.member', 'B.member')").is_ok());
        assert!(signature_policy_from_str("OutOf(3, 'A.member', 'B.member')").is_ok());
        assert_eq!(
            signature_policy_from_str("OutOf(-1, 'A.member', 'B.member')")
                .unwrap_err()
                .to_string(),
            "invalid t-out-of-n predicate, t -1, n 2"
        );
        assert!(signature_policy_from_str("OutOf(4, 'A.member', 'B.member')").is_err());
        let e = signature_policy_from_str("AND('Org.1-x.admin','b.member')").unwrap();
        assert_eq!(e.identities[0], p("Org.1-x", R::Admin));
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "1",
            "'1'",
            "OR('A.foo')",
            "OR(A.member)",
            "OR('A.member'",
            "XOR('A.member')",
            "OutOf(1)",
            "OR()",
            "OR('A.member') junk",
            "OR('.member')",
            "oR('A.member')",
        ] {
            assert!(signature_policy_from_str(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn implicit_meta() {
        let m = implicit_meta_from_str("ANY Readers").unwrap();
        assert_eq!(m.sub_policy, "Readers");
        assert_eq!(m.rule, implicit_meta_policy::Rule::Any as i32);
        assert_eq!(
            implicit_meta_from_str("MAJORITY Admins").unwrap().rule,
            implicit_meta_policy::Rule::Majority as i32
        );
        assert_eq!(
            implicit_meta_from_str("ALL Writers").unwrap().rule,
            implicit_meta_policy::Rule::All as i32
        );
        assert!(implicit_meta_from_str("ANY  Readers").is_err());
        assert!(implicit_meta_from_str("SOME Readers").is_err());
        assert!(implicit_meta_from_str("ANY").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,200}") {
            let _ = signature_policy_from_str(&s);
            let _ = implicit_meta_from_str(&s);
        }

        #[test]
        fn never_panics_dsl_like(s in "[ANDORutfa()',. 0-9\"AB-]{0,120}") {
            let _ = signature_policy_from_str(&s);
        }
    }
}
