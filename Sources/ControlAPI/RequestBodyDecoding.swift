import Foundation
import Hummingbird

/// The control port's JSON request bodies decoded and validated as their routes
/// do it, without a server: the entry point of the request-body fuzz target
/// (`perf/fuzz`). `package`, so the fuzz target reaches it and the public API does not change.
package enum RequestBodyDecoding {
    /// Reads `bytes` as each route's body; answers how many accepted it. A body a
    /// route refuses is a thrown `APIError` (a 400), never a crash.
    package static func acceptingRoutes(_ bytes: [UInt8]) -> Int {
        let data = Data(bytes)
        var accepted = 0
        if let started = try? Request.decodeBody(StreamStartedBody.self, from: data), (try? started.validate()) != nil {
            accepted += 1
        }
        if (try? Request.decodeBody(StreamEndedBody.self, from: data)) != nil { accepted += 1 }
        if (try? Request.decodeBody(ProvisionBody.self, from: data)) != nil { accepted += 1 }
        if let channel = try? Request.decodeBody(ChannelsController.ChannelBody.self, from: data) {
            _ = channel.sourceRecords
            accepted += 1
        }
        if (try? Request.decodeBody(ChannelsController.ImportBody.self, from: data)) != nil { accepted += 1 }
        return accepted
    }
}
