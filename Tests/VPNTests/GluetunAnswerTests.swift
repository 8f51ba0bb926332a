import Testing
import VPN

/// Gluetun's answers as its control server sends them, and the odd ones.
struct GluetunAnswerTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func publicIPIsReadFromItsObjectAndEmptyMeansDown() throws {
        let full = #"{"public_ip":"198.51.100.4","region":"Zurich","country":"Switzerland","city":"Zurich","organization":"M247"}"#
        #expect(try GluetunAnswer.publicIP(Self.bytes(full)).get() == "198.51.100.4")
        #expect(try GluetunAnswer.publicIP(Self.bytes(#"{"public_ip":""}"#)).get() == "")
        #expect(try GluetunAnswer.publicIP(Self.bytes("{}")).get() == "")
        #expect(throws: GluetunControlServer.Failure.self) { try GluetunAnswer.publicIP(Self.bytes("<html>")).get() }
    }

    @Test func portZeroIsNoneAndNonsenseIsMalformed() throws {
        #expect(try GluetunAnswer.port(Self.bytes(#"{"port":51820}"#)).get() == 51_820)
        #expect(try GluetunAnswer.port(Self.bytes(#"{"port":0}"#)).get() == nil)
        #expect(throws: GluetunControlServer.Failure.self) { try GluetunAnswer.port(Self.bytes(#"{"port":70000}"#)).get() }
        #expect(throws: GluetunControlServer.Failure.self) { try GluetunAnswer.port(Self.bytes(#"{"port":"x"}"#)).get() }
    }

    @Test func aMissingKeyIsToldAsSuch() {
        #expect(GluetunControlServer.Failure.status(401).description.contains("GLUETUN_API_KEY"))
    }
}
