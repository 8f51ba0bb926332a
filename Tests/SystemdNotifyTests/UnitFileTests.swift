import Foundation
import XCTest

/// Runs systemd/test-unit.sh: `systemd-analyze verify` clean and
/// `security --offline=true` exposure at most 1.5 for systemd/acerelay.service.
final class UnitFileTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private func systemdAnalyze() throws -> String {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            .map { "\($0)/systemd-analyze" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else { throw XCTSkip("systemd-analyze is not installed: the unit file was not checked (apt-get install systemd)") }
        return path
    }

    private func runScript(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [repository.appendingPathComponent("systemd/test-unit.sh").path] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    func testUnitVerifiesCleanAndExposureIsAtMostOnePointFive() throws {
        _ = try systemdAnalyze()
        let (status, output) = try runScript([])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("Overall exposure level for acerelay.service"), output)
        XCTAssertTrue(output.hasSuffix("PASS\n"), output)
    }

    func testTheScriptCatchesABrokenUnit() throws {
        _ = try systemdAnalyze()
        let unit = try String(contentsOf: repository.appendingPathComponent("systemd/acerelay.service"), encoding: .utf8)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("unit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        // A misspelt key: verify only warns ("Unknown key ..., ignoring") and exits 0.
        let typo = directory.appendingPathComponent("typo.service")
        try unit.replacingOccurrences(of: "NoNewPrivileges=yes", with: "NoNewPrivilege=yes").write(to: typo, atomically: true, encoding: .utf8)
        let (typoStatus, typoOutput) = try runScript([typo.path])
        XCTAssertNotEqual(typoStatus, 0, typoOutput)
        XCTAssertTrue(typoOutput.contains("NoNewPrivilege"), typoOutput)

        // Hardening removed: the exposure goes over the threshold.
        let soft = directory.appendingPathComponent("soft.service")
        let softened = unit.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("Protect") && !$0.hasPrefix("SystemCall") && !$0.hasPrefix("Private") }
            .joined(separator: "\n")
        try softened.write(to: soft, atomically: true, encoding: .utf8)
        let (softStatus, softOutput) = try runScript([soft.path])
        XCTAssertNotEqual(softStatus, 0, softOutput)
        XCTAssertTrue(softOutput.contains("exposure above"), softOutput)
    }
}
