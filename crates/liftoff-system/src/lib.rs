//! Readings of the machine's resources: CPU, memory and the disk holding a directory. Inside a
//! container it reads the cgroup v2 limits (`cpu.max`, `memory.max`) and usage, so the figures
//! are the container's, not the host's. The server samples itself with it and the SDK's
//! instance reporter samples each app instance, so both report the same way.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cpu {
    /// Busy share of the CPUs this process may use, 0–100.
    pub percent: f64,
    /// CPUs available: the cgroup quota when one is set, else the online CPUs.
    pub count: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Memory {
    pub total_mb: f64,
    pub used_mb: f64,
    pub percent: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Disk {
    pub total_gb: f64,
    pub used_gb: f64,
    pub percent: f64,
}

/// One reading.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sample {
    pub cpu: Cpu,
    pub memory: Memory,
    /// The file system holding the sampler's directory.
    pub disk: Disk,
    /// Resident memory of the sampling process.
    pub process_rss_mb: f64,
}

const CGROUP: &str = "/sys/fs/cgroup";
const MB: f64 = 1024.0 * 1024.0;
const GB: f64 = MB * 1024.0;

/// CPU time used so far, in microseconds, and when it was read.
struct CpuReading {
    busy_us: f64,
    at: Instant,
}

/// Takes readings; keeps the previous CPU reading because CPU percent is a rate.
pub struct Sampler {
    data_dir: PathBuf,
    last: Mutex<Option<CpuReading>>,
}

fn read(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// This machine's name (the kernel's host name, else `$HOSTNAME`), to tell replicas apart;
/// `"this server"` when neither is known.
pub fn host_name() -> String {
    read("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "this server".to_owned())
}

/// CPUs this process may use: the cgroup quota, else the online CPUs.
fn cpu_count() -> f64 {
    let online = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    read(format!("{CGROUP}/cpu.max"))
        .and_then(|s| {
            let mut it = s.split_whitespace();
            let quota = it.next()?.parse::<f64>().ok()?; // "max" → None
            let period = it.next()?.parse::<f64>().ok()?;
            Some((quota / period).min(online))
        })
        .unwrap_or(online)
}

/// CPU time used: the cgroup's `usage_usec`, else busy jiffies from /proc/stat.
fn busy_us() -> Option<f64> {
    if let Some(stat) = read(format!("{CGROUP}/cpu.stat"))
        && let Some(v) = stat.lines().find_map(|l| l.strip_prefix("usage_usec "))
    {
        return v.trim().parse().ok();
    }
    let stat = read("/proc/stat")?;
    let fields: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let idle = fields.get(3)? + fields.get(4).unwrap_or(&0.0);
    let total: f64 = fields.iter().take(8).sum();
    // Jiffies are 1/100 s on Linux.
    Some((total - idle) * 10_000.0)
}

fn memory() -> Memory {
    let limit = read(format!("{CGROUP}/memory.max")).and_then(|s| s.trim().parse::<f64>().ok());
    let current =
        read(format!("{CGROUP}/memory.current")).and_then(|s| s.trim().parse::<f64>().ok());
    let meminfo = read("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map(|kb| kb * 1024.0)
    };
    let host_total = field("MemTotal:").unwrap_or(0.0);
    let host_used = host_total - field("MemAvailable:").unwrap_or(host_total);
    let (total, used) = match (limit, current) {
        (Some(l), Some(c)) if l < host_total => (l, c),
        _ => (host_total, host_used),
    };
    Memory {
        total_mb: total / MB,
        used_mb: used / MB,
        percent: if total > 0.0 {
            used / total * 100.0
        } else {
            0.0
        },
    }
}

fn disk(dir: &Path) -> Disk {
    match rustix::fs::statvfs(dir) {
        Ok(s) => {
            let total = s.f_blocks as f64 * s.f_frsize as f64;
            let free = s.f_bfree as f64 * s.f_frsize as f64;
            let used = total - free;
            Disk {
                total_gb: total / GB,
                used_gb: used / GB,
                percent: if total > 0.0 {
                    used / total * 100.0
                } else {
                    0.0
                },
            }
        }
        Err(_) => Disk::default(),
    }
}

fn process_rss_mb() -> f64 {
    read("/proc/self/status")
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

impl Sampler {
    /// A sampler reporting the disk that holds `data_dir`.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            last: Mutex::new(None),
        }
    }

    /// Takes one reading. CPU percent needs two readings, so the first is 0.
    pub fn sample(&self) -> Sample {
        let count = cpu_count();
        let now = Instant::now();
        let percent = match (busy_us(), self.last.lock()) {
            (Some(busy), Ok(mut last)) => {
                let p = last.as_ref().map_or(0.0, |prev| {
                    let wall_us = now.duration_since(prev.at).as_secs_f64() * 1e6;
                    if wall_us <= 0.0 {
                        0.0
                    } else {
                        ((busy - prev.busy_us) / (wall_us * count) * 100.0).clamp(0.0, 100.0)
                    }
                });
                *last = Some(CpuReading {
                    busy_us: busy,
                    at: now,
                });
                p
            }
            _ => 0.0,
        };
        Sample {
            cpu: Cpu { percent, count },
            memory: memory(),
            disk: disk(&self.data_dir),
            process_rss_mb: process_rss_mb(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_plausible() {
        let sampler = Sampler::new(std::env::temp_dir());
        sampler.sample();
        // Burn some CPU so the second reading has something to measure.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        let s = sampler.sample();
        assert!(s.cpu.count >= 1.0);
        assert!((0.0..=100.0).contains(&s.cpu.percent));
        assert!(
            s.memory.total_mb > 0.0 && s.memory.used_mb > 0.0 && s.memory.percent <= 100.0,
            "{:?}",
            s.memory
        );
        assert!(
            s.disk.total_gb > 0.0 && s.disk.percent <= 100.0,
            "{:?}",
            s.disk
        );
        assert!(s.process_rss_mb > 1.0);
    }
}
