import Testing
@testable import Channels

@Suite struct M3UImportTests {
    static let a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    static let b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
    static let c = "cccccccccccccccccccccccccccccccccccccccc"

    static let playlist = """
    #EXTM3U
    #EXTINF:-1 tvg-id="sport1.uk" group-title="Sports",Sport 1
    acestream://\(a)
    #EXTINF:-1 tvg-id="sport1.uk" tvg-logo="http://logo/s1.png",Sport 1 (backup)
    http://127.0.0.1:6878/ace/getstream?id=\(b.uppercased())
    #EXTINF:-1 tvg-id="sport1.uk",Sport 1 again
    http://proxy:8000/ace/getstream?content_id=\(a)
    #EXTINF:-1,News 24
    acestream://\(c)
    #EXTINF:-1,NEWS 24
    http://host/ace/getstream?infohash=\(c)
    #EXTINF:-1,Web TV
    https://cdn.example/live/index.m3u8
    #EXTINF:-1,Broken
    acestream://12345
    #EXTINF:-1,
    acestream://\(b)
    """

    @Test func entriesGroupIntoChannelsWithOrderedUniqueSources() throws {
        let result = try M3UImport(text: Self.playlist)
        #expect(result.channels.count == 2)
        let sport = result.channels[0]
        #expect(sport.name == "Sport 1")
        #expect(sport.slug.value == "sport-1")
        #expect(sport.tvgID == "sport1.uk")
        #expect(sport.groupTitle == "Sports")
        #expect(sport.tvgLogo == "http://logo/s1.png", "filled in from a later entry")
        #expect(sport.sources.map(\.id) == [Self.a, Self.b])
        #expect(sport.sourceLines == [3, 5])
        let news = result.channels[1]
        #expect(news.name == "News 24")
        #expect(news.tvgID == nil)
        // Same hex, but a content id and an infohash are different keys.
        #expect(news.sources.map(\.description) == ["content_id:\(Self.c)", "infohash:\(Self.c)"])
        #expect(result.skipped == [
            .init(line: 7, reason: "same source as line 3"),
            .init(line: 13, reason: "not an AceStream URL"),
            .init(line: 15, reason: "id is not 40 hex characters: \"12345\""),
            .init(line: 17, reason: "no channel name or tvg-id"),
        ])
    }

    @Test func notM3UIsAnErrorNotAnEmptyImport() {
        #expect(throws: M3UParseError.notM3U(line: 1, text: "acestream://\(Self.a)")) { try M3UImport(text: "acestream://\(Self.a)\n") }
    }
}

@Suite struct M3UWriterTests {
    @Test func writerOutputParsesBackToTheSameChannels() throws {
        let items = [
            M3UWriter.Item(name: "Sport 1, HD", url: "http://relay:8080/ace/getstream?id=\(M3UImportTests.a)",
                           tvgID: "sport1.uk", tvgName: "Sport 1", tvgLogo: "http://logo/s 1.png", groupTitle: "Sports, Live"),
            M3UWriter.Item(name: "Кино", url: "acestream://\(M3UImportTests.b)", groupTitle: "Movies"),
        ]
        let text = M3UWriter.render(items)
        #expect(text.hasPrefix("#EXTM3U\n#EXTINF:-1 tvg-id=\"sport1.uk\" tvg-name=\"Sport 1\" tvg-logo=\"http://logo/s 1.png\" group-title=\"Sports, Live\",Sport 1, HD\nhttp://relay:8080/ace/getstream?id="))
        let parsed = try M3UPlaylist(text: text)
        #expect(parsed.entries.count == 2)
        for (item, entry) in zip(items, parsed.entries) {
            #expect(entry.name == item.name)
            #expect(entry.url == item.url)
            #expect(entry.tvgID == item.tvgID)
            #expect(entry.tvgName == item.tvgName)
            #expect(entry.tvgLogo == item.tvgLogo)
            #expect(entry.groupTitle == item.groupTitle)
        }
    }

    @Test func quotesAndLineBreaksCannotBreakTheFormat() throws {
        let hostile = M3UWriter.Item(
            name: "Evil\r\n#EXTINF:-1,Injected\nhttp://evil/", url: "http://x/a b\nhttp://evil/",
            tvgID: "id\" group-title=\"Hijack", groupTitle: "G\"roup\n"
        )
        let text = M3UWriter.render([hostile, M3UWriter.Item(name: "Next", url: "acestream://\(M3UImportTests.a)")])
        #expect(text.split(separator: "\n").count == 5, "one header and two lines per item:\n\(text)")
        let parsed = try M3UPlaylist(text: text)
        #expect(parsed.entries.count == 2)
        let entry = parsed.entries[0]
        #expect(entry.tvgID == "id' group-title='Hijack")
        #expect(entry.groupTitle == "G'roup")
        #expect(entry.name == "Evil #EXTINF:-1,Injected http://evil/")
        #expect(entry.url == "http://x/a%20b%0Ahttp://evil/")
        #expect(parsed.entries[1].name == "Next")
    }

    @Test func importedChannelsRoundTrip() throws {
        let imported = try M3UImport(text: M3UImportTests.playlist)
        let text = M3UWriter.render(imported.channels) { "http://relay:8080" + $0.sources[0].getstreamPath }
        let again = try M3UImport(text: text)
        #expect(again.channels.map(\.name) == imported.channels.map(\.name))
        #expect(again.channels.map(\.tvgID) == imported.channels.map(\.tvgID))
        #expect(again.channels.map(\.groupTitle) == imported.channels.map(\.groupTitle))
        #expect(again.channels.map(\.tvgLogo) == imported.channels.map(\.tvgLogo))
        #expect(again.channels.map { $0.sources[0] .id } == imported.channels.map { $0.sources[0].id })
        #expect(again.skipped.isEmpty)
    }
}

@Suite struct M3URewriterTests {
    static let id = "0123456789abcdef0123456789ABCDEF01234567"

    @Test func defaultModeMovesLocalEnginesAndAcestreamLinksToTheHost() throws {
        let rewriter = try M3URewriter(host: "relay.lan", port: "8000")
        let text = "#EXTM3U\r\n"
            + "#EXTINF:-1 tvg-logo=\"http://localhost:9000/logo.png\",A\r\n"
            + "acestream://\(Self.id)\r\n"
            + "#EXTINF:-1,B\r\n"
            + "http://127.0.0.1:6878/ace/getstream?id=\(Self.id)&pid=2\r\n"
            + "#EXTINF:-1,C\r\n"
            + "http://localhost:6878/ace/manifest.m3u8?infohash=\(Self.id)\r\n"
            + "#EXTINF:-1,D\r\n"
            + "http://192.168.1.5:6878/ace/getstream?id=\(Self.id)\r\n"
            + "https://127.0.0.1:6878/ace/getstream?id=\(Self.id)\r\n"
            + "http://127.0.0.1/ace/getstream?id=\(Self.id)\r\n"
            + "acestream://\(Self.id)ff\r\n"
        let expected = "#EXTM3U\r\n"
            + "#EXTINF:-1 tvg-logo=\"http://relay.lan:8000/logo.png\",A\r\n"
            + "http://relay.lan:8000/ace/getstream?id=\(Self.id)\r\n"
            + "#EXTINF:-1,B\r\n"
            + "http://relay.lan:8000/ace/getstream?id=\(Self.id)&pid=2\r\n"
            + "#EXTINF:-1,C\r\n"
            + "http://relay.lan:8000/ace/manifest.m3u8?infohash=\(Self.id)\r\n"
            + "#EXTINF:-1,D\r\n"
            + "http://192.168.1.5:6878/ace/getstream?id=\(Self.id)\r\n"
            + "https://127.0.0.1:6878/ace/getstream?id=\(Self.id)\r\n"
            + "http://127.0.0.1/ace/getstream?id=\(Self.id)\r\n"
            + "acestream://\(Self.id)ff\r\n"
        #expect(rewriter.rewrite(text) == expected)
    }

    @Test func proxyModeWrapsEveryURL() throws {
        let rewriter = try M3URewriter(host: "10-0-0-1.example", port: "8000", mode: "proxy")
        let text = "#EXTM3U\n#EXTINF:-1,A\nhttp://cdn.example/live?x=1&y=2\nacestream://\(Self.id)\n"
        #expect(rewriter.rewrite(text) == "#EXTM3U\n#EXTINF:-1,A\n"
            + "http://10-0-0-1.example:8000/proxy?url=http%3A%2F%2Fcdn.example%2Flive%3Fx%3D1%26y%3D2\n"
            + "http://10-0-0-1.example:8000/proxy?url=acestream%3A%2F%2F\(Self.id)\n")
    }

    @Test func parametersAreValidatedWithTheOrchestratorsMessages() {
        #expect(throws: M3URewriter.ParameterError.invalidHost) { try M3URewriter(host: "evil.com/x", port: "80") }
        #expect(throws: M3URewriter.ParameterError.invalidHost) { try M3URewriter(host: "", port: "80") }
        #expect(throws: M3URewriter.ParameterError.portNotAnInteger) { try M3URewriter(host: "h", port: "80a") }
        #expect(throws: M3URewriter.ParameterError.portOutOfRange) { try M3URewriter(host: "h", port: "0") }
        #expect(throws: M3URewriter.ParameterError.portOutOfRange) { try M3URewriter(host: "h", port: "65536") }
        #expect(throws: M3URewriter.ParameterError.unknownMode("fast")) { try M3URewriter(host: "h", port: "1", mode: "fast") }
        #expect(M3URewriter.ParameterError.portOutOfRange.description == "Parameter 'port' out of range (1-65535).")
        #expect(throws: M3URewriter.ParameterError.portOutOfRange) { try M3URewriter(host: "h", port: 70_000, mode: .proxy) }
        #expect((try? M3URewriter(host: "relay", port: 8000, mode: .proxy))?.mode == .proxy)
    }
}
