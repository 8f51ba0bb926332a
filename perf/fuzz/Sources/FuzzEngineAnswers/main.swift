import CurlHTTP
import EngineFleet
import FuzzSupport
import Foundation
import RelayCore
import Streams

// One body read as each of the engine's JSON answers the relay decodes:
// getstream (the session and its rewritten URLs), stat, and get_status.
let engine = EngineEndpoint(id: "fuzz", baseURL: "http://127.0.0.1:6878")
FuzzEntryPoint.run { input in
    let body = Array(input)
    _ = try? EngineAPI.parseSession(body, engine: engine)
    _ = StatReading.parse(body, at: Date(timeIntervalSince1970: 0))
    _ = EngineProbe.interpret(.success(HTTPResponse(status: 200, headers: [], body: body)))
}
