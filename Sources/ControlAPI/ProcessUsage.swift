import CSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// This process's CPU time and resident memory, from `/proc/self/stat` and
/// `/proc/self/statm` (Linux; zero elsewhere).
struct ProcessUsage {
    /// User plus system CPU time so far, in seconds.
    var cpuSeconds: Double
    var residentBytes: Double

    static func current() -> ProcessUsage {
        ProcessUsage(cpuSeconds: cpuSeconds(stat: read("/proc/self/stat")),
                     residentBytes: residentBytes(statm: read("/proc/self/statm")))
    }

    /// Bytes malloc has handed out and not had back (glibc's mallinfo2, every arena).
    /// Beside RSS it tells live memory (this) from memory malloc keeps after a free,
    /// thread stacks and code (the rest), which is what a soak needs to tell growth apart.
    static func heapInUseBytes() -> Double { Double(csupport_heap_in_use()) }

    private static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// Fields 14 and 15 (utime, stime, in clock ticks) of `stat`. The command
    /// name (field 2) is in parentheses and may hold spaces, so fields are
    /// counted from the last `)`.
    static func cpuSeconds(stat: String) -> Double {
        guard let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state): utime is field 14, stime field 15.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(max(sysconf(Int32(_SC_CLK_TCK)), 1))
    }

    /// Field 2 (resident pages) of `statm`, in bytes.
    static func residentBytes(statm: String) -> Double {
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Double(fields[1]) else { return 0 }
        return pages * Double(max(sysconf(Int32(_SC_PAGESIZE)), 1))
    }
}
