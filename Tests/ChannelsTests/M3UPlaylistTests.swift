import Testing
@testable import Channels

@Suite struct M3UPlaylistTests {
    static let idA = "0123456789abcdef0123456789abcdef01234567"
    static let idB = "89ABCDEF0123456789ABCDEF0123456789ABCDEF"

    @Test func realWorldShapedPlaylistWithBOMCRLFAndQuotedCommas() throws {
        let text = "\u{FEFF}\r\n\r\n#EXTM3U x-tvg-url=\"http://epg.example/guide.xml.gz\"\r\n"
            + "#EXTINF:-1 tvg-id=\"sport1.uk\" tvg-name=\"Sport 1\" tvg-logo=\"http://logo.example/s1.png\" group-title=\"Sports, Live\",Sport 1 HD, backup\r\n"
            + "#EXTVLCOPT:http-user-agent=VLC\r\n"
            + "acestream://\(Self.idA)\r\n"
            + "#EXTGRP:Movies\r\n"
            + "#EXTINF:0,Film Channel\r\n"
            + "http://127.0.0.1:6878/ace/getstream?id=\(Self.idB)\r\n"
            + "http://plain.example/no-extinf.ts\r\n"
        let playlist = try M3UPlaylist(text: text)
        #expect(playlist.headerAttributes["x-tvg-url"] == "http://epg.example/guide.xml.gz")
        #expect(playlist.entries.count == 3)
        let first = playlist.entries[0]
        // The byte order mark sits alone on line 1, line 2 is blank.
        #expect(first.line == 6)
        #expect(first.extinfLine == 4)
        #expect(first.duration == "-1")
        #expect(first.tvgID == "sport1.uk")
        #expect(first.tvgName == "Sport 1")
        #expect(first.tvgLogo == "http://logo.example/s1.png")
        #expect(first.groupTitle == "Sports, Live")
        #expect(first.name == "Sport 1 HD, backup")
        #expect(first.url == "acestream://\(Self.idA)")
        let second = playlist.entries[1]
        #expect(second.line == 9)
        #expect(second.duration == "0")
        #expect(second.name == "Film Channel")
        #expect(second.groupTitle == "Movies")
        #expect(second.attributes.isEmpty)
        let third = playlist.entries[2]
        #expect(third.line == 10)
        #expect(third.extinfLine == nil)
        #expect(third.name == "")
        #expect(third.groupTitle == nil, "#EXTGRP applies to one entry only")
    }

    @Test func loneCRLineEndsAndTabsAndUnquotedValues() throws {
        let playlist = try M3UPlaylist(text: "#EXTM3U\r#EXTINF:-1\ttvg-id=abc   TVG-Logo=\"x y.png\",  Name  \racestream://\(Self.idA)\r")
        let entry = try #require(playlist.entries.first)
        #expect(entry.line == 3)
        #expect(entry.tvgID == "abc")
        #expect(entry.tvgLogo == "x y.png", "keys are case-folded")
        #expect(entry.name == "Name")
    }

    @Test func extinfWithoutDurationOrNameStillParses() throws {
        let playlist = try M3UPlaylist(text: "#EXTM3U\n#EXTINF:tvg-name=\"Only TVG\"\nacestream://\(Self.idA)\n")
        let entry = try #require(playlist.entries.first)
        #expect(entry.duration == "")
        #expect(entry.name == "")
        #expect(entry.displayName == "Only TVG")
    }

    @Test func bodyThatIsNotM3UNamesTheLine() {
        #expect(throws: M3UParseError.notM3U(line: 3, text: "<!DOCTYPE html>")) {
            try M3UPlaylist(text: "\n  \n<!DOCTYPE html>\n<html>#EXTM3U</html>\n")
        }
        #expect(throws: M3UParseError.notM3U(line: 1, text: "{\"error\":\"not found\"}")) {
            try M3UPlaylist(bytes: Array("{\"error\":\"not found\"}".utf8))
        }
        #expect(throws: M3UParseError.empty) { try M3UPlaylist(text: "\r\n\r\n") }
        #expect(throws: M3UParseError.empty) { try M3UPlaylist(bytes: [0xEF, 0xBB, 0xBF]) }
        let message = M3UParseError.notM3U(line: 3, text: "<!DOCTYPE html>").description
        #expect(message.contains("line 3") && message.contains("#EXTM3U"))
    }

    @Test func lowerCaseHeaderIsAccepted() throws {
        let playlist = try M3UPlaylist(text: "#extm3u\n#EXTINF:-1,A\nacestream://\(Self.idA)\n")
        #expect(playlist.entries.count == 1)
    }

    @Test func byteOrderMarkInBytes() throws {
        let playlist = try M3UPlaylist(bytes: [0xEF, 0xBB, 0xBF] + Array("#EXTM3U\n#EXTINF:-1,Ä\nacestream://\(Self.idA)\n".utf8))
        #expect(playlist.entries.first?.name == "Ä")
    }
}

@Suite struct AceStreamReferenceTests {
    static let id = "0123456789abcdef0123456789abcdef01234567"
    static let upper = "0123456789ABCDEF0123456789ABCDEF01234567"

    @Test func acceptedForms() throws {
        let cases: [(String, AceStreamReference.Parameter, AceStreamReference.Form)] = [
            ("acestream://\(Self.upper)", .id, .scheme),
            ("ACESTREAM://\(Self.id)/", .id, .scheme),
            ("http://127.0.0.1:6878/ace/getstream?id=\(Self.upper)", .id, .getstream),
            ("https://proxy.example:8443/ace/getstream?content_id=\(Self.id)&pid=3", .contentID, .getstream),
            ("http://host:8080/ace/getstream?infohash=\(Self.upper)", .infohash, .getstream),
            ("http://host:8000/ace/manifest.m3u8?id=\(Self.id)", .id, .manifest),
            ("  http://host/ace/getstream/?pid=1&id=\(Self.id)  ", .id, .getstream),
        ]
        for (url, parameter, form) in cases {
            let reference = try AceStreamReference.parse(url).get()
            #expect(reference.id == Self.id, "\(url)")
            #expect(reference.parameter == parameter, "\(url)")
            #expect(reference.form == form, "\(url)")
        }
        #expect(AceStreamReference(url: "http://h/ace/getstream?infohash=\(Self.id)")?.getstreamPath == "/ace/getstream?infohash=\(Self.id)")
        #expect(AceStreamReference(url: "acestream://\(Self.upper)")?.getstreamPath == "/ace/getstream?id=\(Self.id)")
    }

    @Test func rejectionsSayWhy() {
        #expect(AceStreamReference.parse("http://example.com/live/stream.ts") == .failure(.notAceStream))
        #expect(AceStreamReference.parse("rtmp://example.com/ace/getstream?id=\(Self.id)") == .failure(.notAceStream))
        #expect(AceStreamReference.parse("not a url at all") == .failure(.notAceStream))
        #expect(AceStreamReference.parse("acestream://1234") == .failure(.invalidID("1234")))
        #expect(AceStreamReference.parse("acestream://\(Self.id)0") == .failure(.invalidID(Self.id + "0")))
        #expect(AceStreamReference.parse("http://h:1/ace/getstream?id=zz\(Self.id.dropFirst(2))") == .failure(.invalidID("zz" + Self.id.dropFirst(2))))
        #expect(AceStreamReference.parse("http://h:1/ace/getstream?pid=1") == .failure(.missingID))
        #expect(AceStreamReference.Rejection.notAceStream.description == "not an AceStream URL")
        #expect(AceStreamReference.Rejection.invalidID("12").description.hasPrefix("id is not 40 hex characters"))
    }
}

@Suite struct ChannelSlugTests {
    @Test func slugs() {
        #expect(ChannelSlug("Sport 1 HD").value == "sport-1-hd")
        #expect(ChannelSlug("  Canal+ Sport (ES)  ").value == "canal-sport-es")
        #expect(ChannelSlug("Ñoño Télé").value == "nono-tele")
        #expect(ChannelSlug("Первый канал").value == "pervyj-kanal")
        #expect(ChannelSlug("Children's TV").value == "childrens-tv")
        #expect(ChannelSlug("a---b").value == "a-b")
    }

    @Test func symbolOnlyNamesGetAStableHashedSlug() {
        let one = ChannelSlug("★★★")
        #expect(one.value.hasPrefix("channel-"))
        #expect(one.value.count == "channel-".count + 8)
        #expect(one == ChannelSlug("★★★"))
        #expect(one != ChannelSlug("☆☆☆"))
    }
}
