import Foundation
import Locking

/// A player on a stream port that reads (and discards) the stream on a thread of its
/// own until closed, as a real player keeps up with live while a test looks elsewhere.
public final class StreamPlayer: Sendable {
    private let connection: TestHTTPConnection
    private let state = Locked<(received: Int, open: Bool)>((0, true))
    private let done = DispatchSemaphore(value: 0)

    /// Connects, sends `GET /ace/getstream?id=<content>` and starts reading.
    public init(port: UInt16, content: String, userAgent: String = "PanelTestPlayer/1.0") throws {
        let connection = try TestHTTPConnection(port: port)
        self.connection = connection
        try connection.send("GET /ace/getstream?id=\(content) HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: \(userAgent)\r\n\r\n")
        // The thread holds the connection until it ends (`close()` ends it).
        Thread { [self] in
            while true {
                guard let bytes = connection.receive(max: 65_536, timeout: 1) else { continue }
                if bytes.isEmpty { break }
                state.withLock { $0.received += bytes.count }
            }
            state.withLock { $0.open = false }
            done.signal()
        }.start()
    }

    /// Body and head bytes read so far.
    public var bytesReceived: Int { state.withLock { $0.received } }
    /// False once the server closed the connection (or `close()` did).
    public var isOpen: Bool { state.withLock { $0.open } }

    /// Hangs up and waits for the reading thread to end.
    public func close() {
        connection.shutdown()
        done.wait()
    }
}
