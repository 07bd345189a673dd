//! Linux-only figures sysinfo does not give: pressure stall information
//! (`/proc/pressure/{cpu,memory,io}`, kernels >= 4.20 with PSI enabled), the number of
//! runnable tasks (`/proc/loadavg`) and the CPUs this process may run on
//! (`/proc/self/status`). Parsers are pure and tested on text; readers return `None` where the
//! files are absent (other systems, PSI disabled).

use foresight_shared::protocol::plan::Pressure;

/// `avg10` of the `some` and `full` lines of one PSI file.
pub fn parse_psi(text: &str) -> (Option<f64>, Option<f64>) {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let kind = words.next();
        let avg10 = words
            .find_map(|w| w.strip_prefix("avg10="))
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0);
        match kind {
            Some("some") => some = avg10,
            Some("full") => full = avg10,
            _ => {}
        }
    }
    (some, full)
}

/// Tasks ready to run, from `/proc/loadavg`'s fourth field (`running/total`), less the
/// reader itself, which is always running while it reads.
pub fn parse_runnable(text: &str) -> Option<f64> {
    let field = text.split_whitespace().nth(3)?;
    let running: u32 = field.split('/').next()?.parse().ok()?;
    Some(f64::from(running.saturating_sub(1)))
}

/// PSI for CPU, memory and I/O, or `None` where the kernel exposes none.
pub fn read_pressure() -> Option<Pressure> {
    let read = |name: &str| std::fs::read_to_string(format!("/proc/pressure/{name}")).ok();
    let cpu = read("cpu");
    let memory = read("memory");
    let io = read("io");
    if cpu.is_none() && memory.is_none() && io.is_none() {
        return None;
    }
    let (cpu_some, _) = cpu.as_deref().map_or((None, None), parse_psi);
    let (memory_some, memory_full) = memory.as_deref().map_or((None, None), parse_psi);
    let (io_some, io_full) = io.as_deref().map_or((None, None), parse_psi);
    Some(Pressure {
        cpu_some_avg10: cpu_some,
        memory_some_avg10: memory_some,
        memory_full_avg10: memory_full,
        io_some_avg10: io_some,
        io_full_avg10: io_full,
    })
}

/// Runnable tasks right now, where `/proc/loadavg` exists.
pub fn read_runnable() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .as_deref()
        .and_then(parse_runnable)
}

/// The CPUs of a `Cpus_allowed_list:` line (`0-3,8,10-11`), ascending, or `None` when the
/// text has no such line or it does not parse (then nothing is restricted).
pub fn parse_cpus_allowed(status: &str) -> Option<Vec<usize>> {
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
        .trim();
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>().ok()?, b.trim().parse().ok()?),
            None => {
                let n = part.trim().parse::<usize>().ok()?;
                (n, n)
            }
        };
        // A bound on the range, so a corrupt line cannot make a huge list.
        if last < first || last >= 1 << 16 {
            return None;
        }
        cpus.extend(first..=last);
    }
    cpus.sort_unstable();
    cpus.dedup();
    (!cpus.is_empty()).then_some(cpus)
}

/// The CPUs this process (and so the browser that started it, whose affinity it inherits)
/// may run on, where the kernel says.
pub fn read_cpus_allowed() -> Option<Vec<usize>> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .as_deref()
        .and_then(parse_cpus_allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_cpu_lists_are_parsed() {
        let status =
            "Name:\tfoo\nCpus_allowed:\tf\nCpus_allowed_list:\t0-2,5,7-8\nMems_allowed:\t1\n";
        assert_eq!(parse_cpus_allowed(status), Some(vec![0, 1, 2, 5, 7, 8]));
        assert_eq!(parse_cpus_allowed("Cpus_allowed_list:\t1\n"), Some(vec![1]));
        assert_eq!(parse_cpus_allowed("Name: x\n"), None);
        assert_eq!(parse_cpus_allowed("Cpus_allowed_list:\t3-1\n"), None);
        assert_eq!(parse_cpus_allowed("Cpus_allowed_list:\t0-99999999\n"), None);
        assert_eq!(parse_cpus_allowed("Cpus_allowed_list:\tx\n"), None);
    }

    #[test]
    fn psi_lines_are_parsed() {
        let text = "some avg10=12.50 avg60=3.00 avg300=1.00 total=123\n\
                    full avg10=0.75 avg60=0.00 avg300=0.00 total=4\n";
        assert_eq!(parse_psi(text), (Some(12.5), Some(0.75)));
        // The CPU file of older kernels has no `full` line.
        assert_eq!(
            parse_psi("some avg10=1.00 avg60=0 avg300=0 total=0"),
            (Some(1.0), None)
        );
        assert_eq!(parse_psi("garbage\nsome avg10=x"), (None, None));
    }

    #[test]
    fn runnable_tasks_exclude_the_reader() {
        assert_eq!(parse_runnable("0.50 0.40 0.30 9/345 12345"), Some(8.0));
        assert_eq!(parse_runnable("0.50 0.40 0.30 1/345 12345"), Some(0.0));
        assert_eq!(parse_runnable("0.50 0.40"), None);
        assert_eq!(parse_runnable("a b c x/y z"), None);
    }

    #[test]
    fn this_machine_has_them() {
        if cfg!(target_os = "linux") {
            assert!(read_runnable().is_some());
        }
    }
}
