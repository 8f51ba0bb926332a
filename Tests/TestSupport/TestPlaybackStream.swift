import Foundation

/// A streaming (chunked) playback response, read incrementally.
public final class TestPlaybackStream {
    /// How a response ended.
    public enum Ending: Equatable, Sendable {
        /// The zero-length chunk arrived: a clean end.
        case terminator
        /// The connection closed without one.
        case closed
    }

    public private(set) var status: Int
    public private(set) var headers: [String: String]
    /// Body bytes received so far (de-chunked), across every request made on the connection.
    public private(set) var body: [UInt8] = []
    /// Set once the response has ended.
    public private(set) var ending: Ending?

    private let connection: TestHTTPConnection
    private var chunked: Bool
    private var chunkRemaining = 0
    private let path: String

    /// Opens `path` and reads the response head.
    public init(port: UInt16, path: String, timeout: Double = 5) throws {
        connection = try TestHTTPConnection(port: port)
        self.path = path
        connection.sendRequest(path, keepAlive: true)
        let head = try connection.readHead(before: Date().addingTimeInterval(timeout))
        status = head.status
        headers = head.headers
        chunked = head.headers["transfer-encoding"]?.lowercased() == "chunked"
    }

    /// After a clean end, asks for the same path again on the same (kept-alive) connection,
    /// as libcurl does; the new body is appended to `body`.
    public func requestAgain(timeout: Double = 5) throws {
        precondition(ending == .terminator, "only a cleanly ended response leaves the connection usable")
        connection.sendRequest(path, keepAlive: true)
        let head = try connection.readHead(before: Date().addingTimeInterval(timeout))
        status = head.status
        headers = head.headers
        chunked = head.headers["transfer-encoding"]?.lowercased() == "chunked"
        chunkRemaining = 0
        ending = nil
    }

    /// Reads for `seconds` (or until the response ends).
    public func read(for seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        while ending == nil, Date() < deadline {
            do {
                try step(before: deadline)
            } catch {
                return
            }
        }
    }

    /// Reads until `count` body bytes are in or `seconds` pass; says whether they are.
    @discardableResult
    public func read(atLeast count: Int, within seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while body.count < count, ending == nil, Date() < deadline {
            do {
                try step(before: deadline)
            } catch {
                break
            }
        }
        return body.count >= count
    }

    /// Reads until the response ends or `seconds` pass.
    public func readUntilEnd(within seconds: Double) -> Ending? {
        read(for: seconds)
        return ending
    }

    private func step(before deadline: Date) throws {
        guard chunked else {
            let piece = try connection.take(upTo: 1 << 20, before: deadline)
            if piece.isEmpty { ending = .closed } else { body += piece }
            return
        }
        if chunkRemaining == 0 {
            guard let line = try connection.takeLine(before: deadline) else {
                ending = .closed
                return
            }
            guard let size = Int(line.split(separator: ";")[0], radix: 16) else {
                throw TestHTTPError.malformed("chunk size line \(line)")
            }
            if size == 0 {
                // Trailer section, then the blank line that ends the message.
                while let trailer = try connection.takeLine(before: deadline), !trailer.isEmpty {}
                ending = .terminator
                return
            }
            chunkRemaining = size + 2
        }
        let piece = try connection.take(upTo: chunkRemaining, before: deadline)
        guard !piece.isEmpty else {
            ending = .closed
            return
        }
        // The last two bytes of each chunk's allotment are its CRLF.
        let dataPart = max(0, min(piece.count, chunkRemaining - 2))
        body += piece[..<dataPart]
        chunkRemaining -= piece.count
    }
}
