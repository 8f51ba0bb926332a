import Foundation

extension ContainerSpec {
    /// The `POST /containers/create` body.
    func createBody() -> [UInt8] {
        var exposed: [String: EmptyObject] = [:]
        var bindings: [String: [HostBinding]] = [:]
        for binding in portBindings {
            let key = binding.containerPort.description
            exposed[key] = EmptyObject()
            bindings[key, default: []].append(
                HostBinding(HostIp: binding.hostIP ?? "", HostPort: binding.hostPort.map(String.init) ?? ""))
        }
        var retries = 0
        if case .onFailure(let maxRetries) = restartPolicy { retries = maxRetries }
        let body = CreateBody(
            Image: image,
            Cmd: command.isEmpty ? nil : command,
            Env: environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" },
            Labels: labels,
            ExposedPorts: exposed,
            HostConfig: CreateBody.Host(
                NetworkMode: networkMode.description,
                PortBindings: bindings,
                Init: useInit,
                RestartPolicy: .init(Name: restartPolicy.apiName, MaximumRetryCount: retries)))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        do {
            return Array(try encoder.encode(body))
        } catch {
            // Strings, Bools and Ints always encode; a failure here is a bug.
            preconditionFailure("encoding a container create body failed: \(error)")
        }
    }
}

// Field names are the Engine API's, which is why they are capitalized.
private struct CreateBody: Encodable {
    struct Host: Encodable {
        struct Restart: Encodable {
            var Name: String
            var MaximumRetryCount: Int
        }
        var NetworkMode: String
        var PortBindings: [String: [HostBinding]]
        var Init: Bool
        var RestartPolicy: Restart
    }
    var Image: String
    var Cmd: [String]?
    var Env: [String]
    var Labels: [String: String]
    var ExposedPorts: [String: EmptyObject]
    var HostConfig: Host
}

private struct HostBinding: Encodable {
    var HostIp: String
    var HostPort: String
}

/// `{}`: the Engine API marks exposed ports with an empty object.
private struct EmptyObject: Encodable {}
