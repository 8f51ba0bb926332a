import Testing
@testable import RelayCore

@Suite struct HTTPRequestParserTests {
    private func feed(_ parser: inout HTTPRequestParser, _ text: String) throws(HTTPRequestError) -> HTTPRequestHead? {
        let bytes = Array(text.utf8)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        return try parser.append(UnsafeRawBufferPointer(buffer))
    }

    @Test func parsesAHeadSplitAcrossReads() throws {
        var parser = HTTPRequestParser()
        let text = "GET /ace/getstream?id=ABCDEF0123456789abcdef0123456789ABCDEF01&pid=7 HTTP/1.1\r\nHost: x\r\nUser-Agent: VLC/3.0\r\n\r\n"
        var head: HTTPRequestHead?
        for ch in text { head = try feed(&parser, String(ch)) ?? head }
        let parsed = try #require(head)
        #expect(parsed.method == "GET")
        #expect(parsed.path == "/ace/getstream")
        #expect(parsed.query("pid") == "7")
        #expect(parsed.header("user-agent") == "VLC/3.0")
        let key = try StreamRequest.parse(parsed).get()
        #expect(key.kind == .contentID)
        #expect(key.value == "abcdef0123456789abcdef0123456789abcdef01")
    }

    @Test func malformedRequestLinesAreRejected() {
        for text in ["GARBAGE\r\n\r\n", "GET /x HTTP/2.0\r\n\r\n", "GET x HTTP/1.1\r\n\r\n", "GET /x HTTP/1.1\r\nNoColon\r\n\r\n", "get /x HTTP/1.1\r\n\r\n"] {
            var parser = HTTPRequestParser()
            #expect(throws: HTTPRequestError.self, "\(text)") { _ = try feed(&parser, text) }
        }
    }

    @Test func oversizedHeadIsRejectedBeforeItEnds() {
        var parser = HTTPRequestParser(limit: 8 * 1024)
        let big = "GET /ace/getstream HTTP/1.1\r\nX-Filler: " + String(repeating: "a", count: 9_000)
        #expect(throws: HTTPRequestError.headTooLarge) { _ = try feed(&parser, big) }
    }

    @Test func contentSelectorsAreValidated() throws {
        func key(_ query: String) -> Result<ContentKey, StreamRequest.Problem> {
            StreamRequest.parse(HTTPRequestHead(method: "GET", target: "/ace/getstream?\(query)", version: "HTTP/1.1", headers: []))
        }
        let hex = "0123456789abcdef0123456789abcdef01234567"
        #expect(try key("infohash=\(hex.uppercased())").get() == ContentKey(kind: .infohash, value: hex))
        #expect(try key("content_id=\(hex)&pid=abc&format=json").get() == ContentKey(kind: .contentID, value: hex))
        #expect((try? key("id=\(hex.dropLast())").get()) == nil)
        #expect((try? key("id=\(hex.dropLast())z").get()) == nil)
        #expect((try? key("pid=1").get()) == nil)
        #expect((try? key("id=\(hex)&infohash=\(String(hex.reversed()))").get()) == nil)
    }
}
