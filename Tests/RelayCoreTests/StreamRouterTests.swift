import Testing
@testable import RelayCore

@Suite struct StreamRouterTests {
    private func route(_ method: String, _ target: String) -> StreamRoute {
        StreamRouter.standard.route(HTTPRequestHead(method: method, target: target, version: "HTTP/1.1", headers: []))
    }

    private let id = "0123456789abcdef0123456789abcdef01234567"

    @Test func getstreamPlaysAndHeadProbesWithoutASession() {
        #expect(route("GET", "/ace/getstream?id=\(id)") == .play(ContentKey(kind: .contentID, value: id)!))
        #expect(route("GET", "/ace/getstream/?id=\(id)") == .play(ContentKey(kind: .contentID, value: id)!))
        #expect(route("HEAD", "/ace/getstream?id=\(id)") == .probeStream)
    }

    @Test func aBadContentIdIsRefusedWithoutABodyForHead() {
        guard case .refuse(400, "bad_content_id", _, let includeBody, false) = route("HEAD", "/ace/getstream?id=12") else {
            Issue.record("not a 400")
            return
        }
        #expect(!includeBody)
    }

    @Test func channelPathsPlayTheChannelAndLeaveOtherFormsAlone() {
        #expect(route("GET", "/ace/channel/canal-sport-1") == .playChannel("canal-sport-1", includeBody: true))
        #expect(route("HEAD", "/ace/channel/canal-sport-1") == .playChannel("canal-sport-1", includeBody: false))
        #expect(route("GET", "/ace/channel/canal-sport-1/") == .playChannel("canal-sport-1", includeBody: true))
        #expect(route("GET", "/ace/channel/news.m3u8") == .hlsChannelPlaylist("news", includeBody: true))
        #expect(route("HEAD", "/ace/channel/news.m3u8") == .hlsChannelPlaylist("news", includeBody: false))
        for path in ["/ace/channel/", "/ace/channel/.m3u8", "/ace/channel/News.m3u8", "/ace/channel/news.ts", "/ace/channel/News", "/ace/channel/a/b"] {
            guard case .refuse(404, "not_found", _, _, false) = route("GET", path) else {
                Issue.record("\(path) is not a channel id")
                continue
            }
        }
    }

    @Test func statusAnswersGetAndHead() {
        #expect(route("GET", "/ace/status") == .status(includeBody: true))
        #expect(route("HEAD", "/ace/status") == .status(includeBody: false))
    }

    @Test func unknownPathsAndMethodsAreRefused() {
        guard case .refuse(404, "not_found", _, true, false) = route("GET", "/nope") else { Issue.record("not a 404"); return }
        guard case .refuse(405, "method_not_allowed", _, true, true) = route("POST", "/ace/status") else { Issue.record("not a 405"); return }
    }
}
