import Foundation

/// Runs one fuzz target's body on every input.
///
/// Built by `perf/fuzz.sh` with `-sanitize=fuzzer,address -DFUZZING`, the body runs
/// under libFuzzer. In any other build (the package's ordinary `swift build`) the
/// same executable replays the files and directories named on its command line,
/// so a committed corpus or a crash file can be rerun without the fuzzer.
public enum FuzzEntryPoint {
    /// Hands control to libFuzzer (or the replayer) and exits with its status.
    public static func run(_ body: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
        fuzzBody = body
        #if FUZZING
        // SwiftPM links an executable with `--defsym main=<module>_main`, so its own
        // main wins over libFuzzer's: start libFuzzer's driver from here instead.
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput))
        #else
        exit(replay(CommandLine.arguments.dropFirst()))
        #endif
    }

    private static func replay(_ paths: ArraySlice<String>) -> Int32 {
        var inputs: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                print("no such file or directory: \(path)")
                return 2
            }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                inputs += names.sorted().map { "\(path)/\($0)" }
            } else {
                inputs.append(path)
            }
        }
        for input in inputs {
            guard let data = FileManager.default.contents(atPath: input) else { continue }
            data.withUnsafeBytes { fuzzBody?($0) }
        }
        print("replayed \(inputs.count) inputs")
        return 0
    }
}

// Set once, before libFuzzer starts calling; libFuzzer runs inputs on one thread.
nonisolated(unsafe) private var fuzzBody: ((UnsafeRawBufferPointer) -> Void)?

/// libFuzzer's entry point; its `main` (linked, though unused) refers to this name.
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzBody?(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32
#endif
