import Locking

/// Every open connection, so the engine can abort them all when it dies or shuts down.
final class ConnectionRegistry: Sendable {
    private struct State {
        var nextID = 1
        var open: [Int: ClientConnection] = [:]
    }

    private let state = Locked(State())

    /// Wraps an accepted descriptor and registers it.
    func adopt(_ descriptor: Int32) -> ClientConnection {
        state.withLock { state in
            let connection = ClientConnection(id: state.nextID, descriptor: descriptor)
            state.nextID += 1
            state.open[connection.id] = connection
            return connection
        }
    }

    /// Deregisters and closes a connection; its owning thread calls this when done.
    func release(_ connection: ClientConnection) {
        // Deregister first: once out of the map, no abort() can touch a descriptor number the
        // kernel may hand out again after close.
        _ = state.withLock { $0.open.removeValue(forKey: connection.id) }
        connection.close()
    }

    /// Aborts every open connection.
    func abortAll() {
        state.withLock { state in
            for connection in state.open.values { connection.abort() }
        }
    }

    /// Connections still open.
    var openCount: Int { state.withLock { $0.open.count } }
}
