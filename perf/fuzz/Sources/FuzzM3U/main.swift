import Channels
import FuzzSupport

// A playlist as `/channels/import` and `/modify_m3u` read it: parsed, grouped
// into channels, and rewritten in both modes.
let rewriters = [try! M3URewriter(host: "relay.example", port: 8080, mode: .default),
                 try! M3URewriter(host: "relay.example", port: 8080, mode: .proxy)]
FuzzEntryPoint.run { input in
    let text = String(decoding: input, as: UTF8.self)
    if let playlist = try? M3UPlaylist(bytes: Array(input)) {
        _ = M3UImport(playlist)
    }
    for rewriter in rewriters { _ = rewriter.rewrite(text) }
}
