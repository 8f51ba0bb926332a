#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which call and the errno it returned.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    /// The name of the call that failed, for the message.
    public let call: String
    /// The errno value.
    public let code: Int32

    public init(_ call: String, code: Int32 = errno) {
        self.call = call
        self.code = code
    }

    public var description: String {
        "\(call): \(String(cString: strerror(code))) (errno \(code))"
    }
}

/// Outcome of a non-blocking write: bytes moved, or the socket is full.
enum IOProgress: Equatable {
    case wrote(Int)
    case wouldBlock
}

/// Each syscall the relay uses, wrapped once: EINTR is retried inside, EAGAIN is
/// returned as a value, and any other errno is thrown.
enum Syscall {
    static func write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws -> IOProgress {
        while true {
            let n = Glibc.write(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return .wrote(n) }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            default: throw SystemError("write")
            }
        }
    }

    /// Reads into `buffer`; 0 means the peer closed, nil means nothing to read now.
    static func read(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            switch errno {
            case EINTR: continue
            case EAGAIN: return nil
            default: throw SystemError("read")
            }
        }
    }

    /// Copies `count` bytes of `file` at `offset` to the socket without passing
    /// through user space. The kernel keeps references to the file's pages after
    /// this returns, which is why the history is append-only.
    static func sendfile(socket: Int32, file: Int32, offset: inout Int, count: Int) throws -> IOProgress {
        while true {
            let n = Glibc.sendfile(socket, file, &offset, count)
            if n >= 0 { return .wrote(n) }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            default: throw SystemError("sendfile")
            }
        }
    }

    static func pwriteAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < buffer.count {
            let n = Glibc.pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("pwrite")
            }
            done += n
        }
    }

    /// Reads `buffer.count` bytes at `offset`, fewer only at the end of the file; returns how many.
    static func preadAll(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = Glibc.pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("pread")
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    static func close(_ fd: Int32) {
        // Linux releases the descriptor even when close reports EINTR: never retry.
        _ = Glibc.close(fd)
    }
}
