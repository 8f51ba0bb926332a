import Testing
@testable import RelayCore

@Suite struct EngineSessionTests {
    let engine = EngineEndpoint(id: "e", baseURL: "http://127.0.0.1:6878")

    @Test(arguments: [
        ("http://172.17.0.5:6878/ace/r/abc/1", "http://127.0.0.1:6878/ace/r/abc/1"),
        ("https://user:pw@10.0.0.9/ace/stat/abc/1?x=1", "http://127.0.0.1:6878/ace/stat/abc/1?x=1"),
        ("//127.0.0.2:7000/ace/cmd/abc/1", "http://127.0.0.1:6878/ace/cmd/abc/1"),
        ("127.0.0.2:7000/ace/r/abc/1", "http://127.0.0.1:6878/ace/r/abc/1"),
        ("engine.example:7000/ace/r/abc/1", "http://127.0.0.1:6878/ace/r/abc/1"),
        ("localhost/ace/r/abc/1", "http://127.0.0.1:6878/ace/r/abc/1"),
        ("user@127.0.0.2/ace/r/abc/1", "http://127.0.0.1:6878/ace/r/abc/1"),
        ("127.0.0.2:7000", "http://127.0.0.1:6878/"),
        ("127.0.0.2:7000?method=stop", "http://127.0.0.1:6878/?method=stop"),
        ("/ace/r/abc/1", "http://127.0.0.1:6878/ace/r/abc/1"),
        ("ace/r/abc/1", "http://127.0.0.1:6878/ace/r/abc/1"),
        ("", ""),
    ])
    func everyURLTheEngineReturnsEndsUpOnTheEnginesAddress(returned: String, rewritten: String) {
        #expect(EngineAPI.rewriteHost(returned, to: engine) == rewritten)
    }

    @Test func aSchemeLessGetstreamAnswerIsRewrittenBeforeAnythingIsFetched() throws {
        let body = #"{"response":{"playback_url":"127.0.0.2:7000/ace/r/h/s","stat_url":"127.0.0.2:7000/ace/stat/h/s","#
            + #""command_url":"ace/cmd/h/s","infohash":"h","playback_session_id":"s","is_live":1},"error":null}"#
        let session = try EngineAPI.parseSession(Array(body.utf8), engine: engine)
        #expect(session.playbackURL == "http://127.0.0.1:6878/ace/r/h/s")
        #expect(session.statURL == "http://127.0.0.1:6878/ace/stat/h/s")
        #expect(session.commandURL == "http://127.0.0.1:6878/ace/cmd/h/s")
        #expect(EngineAPI.stopURL(commandURL: session.commandURL) == "http://127.0.0.1:6878/ace/cmd/h/s?method=stop")
    }
}
