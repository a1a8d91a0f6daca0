//! Runs the fault-injection command (`scripts/faults/faults.py`) from a test
//! and checks its summary line.

use std::path::PathBuf;
use std::process::Command;

use super::bin;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One invocation of `faults.py`.
pub struct FaultRun<'a> {
    pub rounds: u32,
    pub kinds: &'a str,
    /// Further options (`--no-exactly-once`, `--netns PREFIX`, ...).
    pub extra: &'a [&'a str],
}

impl FaultRun<'_> {
    /// Runs the rounds; panics unless every round passed with load flowing.
    /// Returns the full output (its last line is the summary).
    pub fn run(&self) -> String {
        let bin_dir = bin("orderer").parent().unwrap().to_path_buf();
        bin("orderer-client");
        bin("configtxgen");
        let out = Command::new("python3")
            .arg(repo().join("scripts/faults/faults.py"))
            .arg(self.rounds.to_string())
            .args(["--seed", "7"])
            .args(["--kinds", self.kinds])
            .args(["--pause-min", "8", "--pause-max", "10"])
            .args(["--pre", "2", "--post", "3", "--rate", "100"])
            .arg("--bin-dir")
            .arg(&bin_dir)
            .args(self.extra)
            .output()
            .expect("running python3 scripts/faults/faults.py (python3 is required)");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "fault rounds failed:\n{stdout}");
        let last = stdout.lines().last().unwrap_or_default().to_string();
        assert!(
            last.contains(&format!("rounds {},", self.rounds))
                && last.contains("lost 0,")
                && last.contains("duplicated 0,")
                && last.contains("divergent blocks 0,"),
            "{last}"
        );
        // Load actually flowed: the summary names a non-zero acknowledged count.
        let acked: u64 = last
            .split("acknowledged ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        assert!(
            acked > 100 * u64::from(self.rounds),
            "too little load acknowledged: {last}"
        );
        stdout
    }
}
