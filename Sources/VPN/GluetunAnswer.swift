import Foundation

/// Gluetun's answers, parsed: pure, so the odd ones are tested without a server.
public enum GluetunAnswer {
    /// `{"public_ip":"1.2.3.4", ...}` → the address, "" while the tunnel is down.
    public static func publicIP(_ body: [UInt8]) -> Result<String, GluetunControlServer.Failure> {
        struct Wire: Decodable { var public_ip: String? }
        guard let wire = try? JSONDecoder().decode(Wire.self, from: Data(body)) else {
            return .failure(.malformed("a public IP answer that is not JSON"))
        }
        return .success((wire.public_ip ?? "").trimmingCharacters(in: .whitespaces))
    }

    /// `{"port":N}` → N, nil for 0 (nothing forwarded); a port outside 1–65535 is malformed.
    public static func port(_ body: [UInt8]) -> Result<Int?, GluetunControlServer.Failure> {
        struct Wire: Decodable { var port: Int }
        guard let wire = try? JSONDecoder().decode(Wire.self, from: Data(body)) else {
            return .failure(.malformed("a port answer without a numeric \"port\""))
        }
        switch wire.port {
        case 0: return .success(nil)
        case 1...65_535: return .success(wire.port)
        default: return .failure(.malformed("port \(wire.port)"))
        }
    }
}
