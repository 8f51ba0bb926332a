import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The control plane runs at a lower scheduling priority than the relay.
///
/// Linux keeps a nice value per thread. Relay loops raise themselves to -10
/// where allowed; every other thread of the process (Swift concurrency's pool,
/// whose priority libdispatch sets from QoS, the API server's event loops,
/// curl's transfer threads) is lowered to +10 here, at start-up and then
/// periodically, since new threads appear over time. Raising a nice value
/// needs no privilege.
enum ThreadPriority {
    static let controlPlaneNice: Int32 = 10

    /// Lowers the calling thread (only it: `PRIO_PROCESS` with who 0 is per thread on Linux).
    static func lowerCurrentThread() {
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, controlPlaneNice)
    }

    /// Lowers every thread not named `relay-*`; returns how many it changed.
    @discardableResult
    static func lowerControlPlaneThreads() -> Int {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return 0 }
        var changed = 0
        for task in tasks {
            guard let tid = id_t(task),
                  let name = try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8),
                  !name.hasPrefix("relay-") else { continue }
            errno = 0
            let current = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), tid)
            if errno == 0, current < controlPlaneNice, setpriority(__priority_which_t(PRIO_PROCESS.rawValue), tid, controlPlaneNice) == 0 {
                changed += 1
            }
        }
        return changed
    }
}
