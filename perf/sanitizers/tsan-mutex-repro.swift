// ThreadSanitizer on Linux reports a "Swift access race" here, though every access is
// inside Mutex.withLock: Synchronization.Mutex locks with futex syscalls that TSan does
// not intercept, so it sees no happens-before edge. Swift 6.3.1, Debian 12:
//   swiftc -sanitize=thread perf/sanitizers/tsan-mutex-repro.swift -o /tmp/m && /tmp/m

import Foundation
import Synchronization
final class Box: Sendable { let v = Mutex<[Int]>([]) }
let box = Box()
let t = Thread { for i in 0..<10000 { box.v.withLock { $0.append(i) } } }
t.start()
var n = 0
for _ in 0..<10000 { n += box.v.withLock { $0.count } }
sleep(1)
print("done", box.v.withLock { $0.count })
