//! Process figures from `/proc` (Linux): CPU time and memory, and the open-file limit.

use std::time::Duration;

/// Clock ticks per second in `/proc/*/stat`. Linux fixes `USER_HZ` at 100 on every
/// architecture it exports to user space; reading `sysconf` would need `unsafe` (forbidden here).
const USER_HZ: u64 = 100;

/// Which process to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid {
    /// The generator itself.
    Own,
    /// Another process, e.g. the server under test.
    Other(u32),
}

impl Pid {
    fn dir(self) -> String {
        match self {
            Pid::Own => "/proc/self".to_owned(),
            Pid::Other(pid) => format!("/proc/{pid}"),
        }
    }
}

/// User plus system CPU time the process has used so far, or `None` if it cannot be read.
pub fn cpu_time(pid: Pid) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("{}/stat", pid.dir())).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// utime + stime from the text of `/proc/PID/stat`. The command name (field 2) may contain
/// spaces and parentheses, so the fields are counted from the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the name: field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size in KiB (`VmRSS`).
pub fn rss_kib(pid: Pid) -> Option<u64> {
    status_kib(pid, "VmRSS")
}

/// Resident anonymous memory in KiB (`RssAnon`): heap, stacks and other private memory, without
/// the pages of the executable and libraries mapped from files, which fault in as code paths
/// first run and are not the process's data.
pub fn anon_rss_kib(pid: Pid) -> Option<u64> {
    status_kib(pid, "RssAnon")
}

/// Peak resident set size since the process started, in KiB (`VmHWM`).
pub fn peak_rss_kib(pid: Pid) -> Option<u64> {
    status_kib(pid, "VmHWM")
}

/// Open file descriptors (entries of `/proc/PID/fd`); reading another user's process needs
/// the same user or more privileges.
pub fn open_fds(pid: Pid) -> Option<u64> {
    let entries = std::fs::read_dir(format!("{}/fd", pid.dir())).ok()?;
    Some(entries.count() as u64)
}

fn status_kib(pid: Pid, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("{}/status", pid.dir())).ok()?;
    parse_status_kib(&status, field)
}

fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// CPU use between two readings, as a percentage of one core (200 = two cores busy).
pub fn cpu_percent(
    before: Option<Duration>,
    after: Option<Duration>,
    wall: Duration,
) -> Option<f64> {
    let used = after?.checked_sub(before?)?;
    (!wall.is_zero()).then(|| used.as_secs_f64() / wall.as_secs_f64() * 100.0)
}

/// Raises the soft open-file limit to the hard limit, so thousands of sockets fit; returns the
/// new soft limit.
///
/// # Errors
/// The limit could not be read or set.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Number of CPU cores the generator may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_hostile_command_name() {
        let stat = "1234 (a) b (c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
    }

    #[test]
    fn parses_status_fields() {
        let status = "Name:\tchorus\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(10240));
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(20480));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn reads_its_own_process() {
        assert!(cpu_time(Pid::Own).is_some());
        assert!(rss_kib(Pid::Own).is_some_and(|kib| kib > 0));
        // stdin, stdout, stderr at least, and the directory being read.
        assert!(open_fds(Pid::Own).is_some_and(|fds| fds >= 3));
    }
}
