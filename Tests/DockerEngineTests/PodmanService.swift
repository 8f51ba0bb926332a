import DockerEngine
import Foundation
import Locking
#if canImport(Glibc)
import Glibc
#endif

/// podman's Docker-compatible API service, started by a test on a socket of its
/// own and stopped after it, plus images built without any registry.
///
/// Self-contained (needs only `DockerEngine` and Foundation) so other test
/// targets can copy it. It uses the configuration that works on these machines:
/// runc rather than crun (crun fails on hybrid cgroups), raised default ulimits
/// (container start fails with EPERM without them), cgroupfs, file events.
/// Images live in podman's normal storage, so they are shared between services
/// and kept between runs; containers are not: each service labels the ones its
/// tests create (`labels`) and removes them in `stop()`.
/// A service with `isolatedStorage` has storage of its own under its directory:
/// two such services are two Docker hosts that do not see each other's
/// containers (services on podman's normal storage all see the same ones).
///
/// Usage: `try await PodmanService.with { podman in ... podman.client ... }`.
final class PodmanService: @unchecked Sendable {
    // @unchecked: every stored property is immutable or behind a mutex; `Process`
    // is only asked to signal and report whether it runs, which it allows from any thread.

    /// The Debian packages the service and its images need.
    static let installHint =
        "apt-get install -y podman runc catatonit uidmap slirp4netns fuse-overlayfs busybox-static"

    /// A directory of this service's own: socket, configuration, log, tarballs.
    let directory: URL
    /// The API socket.
    let socketPath: String
    /// `unix://<socketPath>`, what `DOCKER_HOST` would hold.
    let host: DockerHost
    /// A client of this service.
    let client: DockerClient
    /// Put these labels on every container a test creates, so `stop()` removes it.
    let labels: [String: String]
    /// Whether its storage is its own (under `directory`) rather than podman's normal one.
    let isolatedStorage: Bool
    /// The service process; replaced by `startService()` after `stopService()`.
    private let current: Locked<Process>
    private var process: Process { current.withLock { $0 } }

    private var isRunning: Bool { Self.isRunning(process.processIdentifier) }

    /// Whether a child process still runs, read from /proc: Foundation's
    /// `isRunning` was seen to stay true (and `waitUntilExit` to hang) for a
    /// child that had exited and was left a zombie.
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != "Z" && state != "X"
    }

    /// Sends `signal` to a child and waits up to `seconds` for it to exit; SIGKILL if it has not.
    static func stop(_ pid: Int32, signal: Int32 = SIGTERM, within seconds: Double = 5) {
        guard isRunning(pid) else { return }
        Glibc.kill(pid, signal)
        let deadline = Date().addingTimeInterval(seconds)
        while isRunning(pid) && Date() < deadline { usleep(10_000) }
        if isRunning(pid) {
            Glibc.kill(pid, SIGKILL)
            while isRunning(pid) && Date() < deadline.addingTimeInterval(5) { usleep(10_000) }
        }
    }

    private init(directory: URL, socketPath: String, process: Process, owner: String, isolatedStorage: Bool) {
        self.directory = directory
        self.socketPath = socketPath
        self.host = .unixSocket(path: socketPath)
        self.client = DockerClient(host: .unixSocket(path: socketPath))
        self.labels = ["acerelay.test.podman-service": owner]
        self.isolatedStorage = isolatedStorage
        self.current = Locked(process)
    }

    /// Starts a service and waits until it answers `/_ping`.
    /// - Throws: `PodmanServiceError` naming the packages to install when podman
    ///   or its runtime is missing, or with the service's log when it does not come up.
    static func start(isolatedStorage: Bool = false, readyWithin limit: Duration = .seconds(20)) async throws -> PodmanService {
        guard findExecutable("podman") != nil, findExecutable("runc") != nil,
              findExecutable("catatonit", extraDirectories: ["/usr/libexec/podman"]) != nil
        else {
            throw PodmanServiceError("podman, runc or catatonit is not installed: \(installHint)")
        }
        var template = Array("/tmp/acerelay-podman-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else {
            throw PodmanServiceError("cannot create a directory in /tmp: \(String(cString: strerror(errno)))")
        }
        let directory = URL(fileURLWithPath: String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self))
        let socketPath = directory.appendingPathComponent("podman.sock").path
        let configuration = directory.appendingPathComponent("containers.conf")
        try """
        [containers]
        default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
        [engine]
        runtime = "runc"
        cgroup_manager = "cgroupfs"
        events_logger = "file"

        """.write(to: configuration, atomically: true, encoding: .utf8)

        let process = try launch(directory: directory, socketPath: socketPath, isolatedStorage: isolatedStorage)
        let service = PodmanService(directory: directory, socketPath: socketPath, process: process,
                                    owner: directory.lastPathComponent, isolatedStorage: isolatedStorage)
        do {
            try await service.waitUntilAnswering(within: limit)
        } catch {
            await service.stop()
            throw error
        }
        await service.removeOrphanedContainers()
        return service
    }

    /// Starts `podman system service` on `socketPath` with the configuration in `directory`, its log appended to `service.log`.
    private static func launch(directory: URL, socketPath: String, isolatedStorage: Bool) throws -> Process {
        guard let podman = findExecutable("podman") else { throw PodmanServiceError("podman is not installed: \(installHint)") }
        let logURL = directory.appendingPathComponent("service.log")
        if !FileManager.default.fileExists(atPath: logURL.path) {
            guard FileManager.default.createFile(atPath: logURL.path, contents: nil) else {
                throw PodmanServiceError("cannot create \(logURL.path)")
            }
        }
        let log = try FileHandle(forWritingTo: logURL)
        log.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: podman)
        // Its own root, run root and tmp dir (locks, the "alive" file): nothing shared with another service.
        let storage = isolatedStorage
            ? ["--root", directory.appendingPathComponent("storage").path, "--runroot", directory.appendingPathComponent("run").path,
               "--tmpdir", directory.appendingPathComponent("tmp").path]
            : []
        process.arguments = storage + ["system", "service", "--time=0", "unix://\(socketPath)"]
        var environment = ProcessInfo.processInfo.environment
        environment["CONTAINERS_CONF"] = directory.appendingPathComponent("containers.conf").path
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try? log.close()
        return process
    }

    private func waitUntilAnswering(within limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        while true {
            do {
                try await client.ping()
                return
            } catch {
                if !isRunning || ContinuousClock.now > deadline {
                    let output = (try? String(contentsOf: directory.appendingPathComponent("service.log"), encoding: .utf8)) ?? ""
                    throw PodmanServiceError(
                        "podman system service did not answer on \(socketPath) (\(error)); its log: \(output.suffix(1500))")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// Stops the service (SIGTERM) as an operator stops a daemon; its containers keep running.
    func stopService() async {
        guard isRunning else { return }
        // Other services starting meanwhile must not take this one's containers for orphans.
        try? String(getpid()).write(to: directory.appendingPathComponent("stopped-by"), atomically: true, encoding: .utf8)
        process.terminate()
        let deadline = ContinuousClock.now + .seconds(5)
        while isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if isRunning { kill() }
    }

    /// Starts the service again after `stopService()`, on the same socket and storage.
    func startService(readyWithin limit: Duration = .seconds(20)) async throws {
        guard !isRunning else { return }
        let started = try Self.launch(directory: directory, socketPath: socketPath, isolatedStorage: isolatedStorage)
        current.withLock { $0 = started }
        try await waitUntilAnswering(within: limit)
        try? FileManager.default.removeItem(at: directory.appendingPathComponent("stopped-by"))
    }

    /// Runs `body` with a started service and stops the service afterwards, also when `body` throws.
    static func with<T>(
        isolation: isolated (any Actor)? = #isolation,
        isolatedStorage: Bool = false,
        _ body: (PodmanService) async throws -> T
    ) async throws -> T {
        let service = try await start(isolatedStorage: isolatedStorage)
        do {
            let result = try await body(service)
            await service.stop()
            return result
        } catch {
            await service.stop()
            throw error
        }
    }

    /// Removes the containers carrying `labels`, stops the service and deletes its directory.
    /// With isolated storage every container goes: all of them are this service's.
    func stop() async {
        if isolatedStorage, !isRunning { try? await startService() }
        if isRunning, let containers = try? await client.listContainers(labels: isolatedStorage ? [:] : labels, all: true) {
            for container in containers {
                try? await client.removeContainer(id: container.id, force: true)
            }
        }
        await stopService()
        if isolatedStorage {
            // podman leaves its overlay directory bind-mounted on itself; the directory cannot go while it is.
            _ = try? Self.run("umount", [directory.appendingPathComponent("storage/overlay").path])
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Removes containers (and directories) left by services whose test process
    /// died before `stop()`: their owner label names a service that no longer answers.
    private func removeOrphanedContainers() async {
        let key = "acerelay.test.podman-service"
        guard let containers = try? await client.listContainers(labels: [key: ""], all: true) else { return }
        var ownerAlive: [String: Bool] = [:]
        for container in containers {
            guard let owner = container.labels[key], owner.hasPrefix("acerelay-podman-"), !owner.contains("/"),
                  owner != directory.lastPathComponent else { continue }
            let ownerDirectory = "/tmp/\(owner)"
            if ownerAlive[owner] == nil {
                ownerAlive[owner] = await Self.ownerIsAlive(ownerDirectory)
                if ownerAlive[owner] == false { try? FileManager.default.removeItem(atPath: ownerDirectory) }
            }
            if ownerAlive[owner] == false {
                try? await client.removeContainer(id: container.id, force: true)
            }
        }
    }

    /// Whether the service that owned `ownerDirectory` may still be in use: it
    /// answers, or is slow to (its socket is there and does not refuse), or its
    /// test stopped it on purpose and still runs (`stopped-by` holds that test's pid).
    private static func ownerIsAlive(_ ownerDirectory: String) async -> Bool {
        if let pid = (try? String(contentsOfFile: ownerDirectory + "/stopped-by", encoding: .utf8)).flatMap({ Int32($0) }),
           Glibc.kill(pid, 0) == 0 {
            return true
        }
        let socket = ownerDirectory + "/podman.sock"
        do {
            try await DockerClient(host: .unixSocket(path: socket), requestTimeout: .seconds(2)).ping()
            return true
        } catch .daemonUnreachable(_, let reason) {
            return FileManager.default.fileExists(atPath: socket) && !reason.contains("refused")
        } catch {
            return true
        }
    }

    /// Kills the service at once (SIGKILL), as a crashed daemon; its containers keep running.
    func kill() { Self.stop(process.processIdentifier, signal: SIGKILL) }

    // MARK: Images

    /// An image holding only Debian's static busybox at `/bin/busybox`, imported
    /// on first use (`["/bin/busybox", "httpd", "-f", ...]` works as a command).
    func busyboxImage() async throws -> String {
        let busybox = URL(fileURLWithPath: "/bin/busybox")
        guard FileManager.default.isExecutableFile(atPath: busybox.path) else {
            throw PodmanServiceError("/bin/busybox is missing: \(Self.installHint)")
        }
        return try await image(packaging: busybox, at: "/bin/busybox", repository: "acerelay-test-busybox")
    }

    /// An image holding `executable` at `pathInImage` and every shared library
    /// `ldd` lists for it (with the dynamic loader), imported on first use.
    ///
    /// The tag is a digest of the packed files' paths, sizes and modification
    /// times, so a rebuilt binary (or a changed library set) gets a new image
    /// while an unchanged one is imported once.
    /// Libraries keep their absolute paths, which is what the binary's RUNPATH
    /// (for Swift's runtime under /opt/swift) and the loader's defaults expect.
    func image(packaging executable: URL, at pathInImage: String? = nil, repository: String) async throws -> String {
        let inside = pathInImage ?? "/" + executable.lastPathComponent
        let libraries = try Self.sharedLibraries(of: executable)
        var digest: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for (source, target) in [(executable.path, inside)] + libraries.map({ ($0, $0) }) {
            let attributes = try FileManager.default.attributesOfItem(atPath: source)
            let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            for byte in "\(target) \(size) \(modified)\n".utf8 {
                digest = (digest ^ UInt64(byte)) &* 0x100_0000_01b3
            }
        }
        let tag = "p" + String(digest, radix: 16)
        let reference = "\(repository):\(tag)"
        let client = client
        let directory = directory
        // Services on podman's normal storage share images; one with storage of its own needs its own import.
        let storage = isolatedStorage ? directory.path : "shared"
        return try await Self.imports.once("\(storage) \(reference)") {
            if try await client.imageExists(reference) { return reference }
            let tarball = directory.appendingPathComponent("\(repository)-\(tag).tar")
            try Self.makeRootfsTar(executable: executable, at: inside, tarball: tarball)
            defer { try? FileManager.default.removeItem(at: tarball) }
            let imported = try await client.importImage(rootfsTar: tarball, repository: repository, tag: tag)
            Self.removeStaleImages(of: repository, keeping: tag)
            return imported
        }
    }

    /// Parallel tests asking for the same image share one import: two imports
    /// would fight over podman's `latest` name and leave an untagged image behind.
    private static let imports = ImageImports()

    private actor ImageImports {
        private var inFlight: [String: Task<String, any Error>] = [:]

        func once(_ reference: String, _ make: @escaping @Sendable () async throws -> String) async throws -> String {
            if let running = inFlight[reference] { return try await running.value }
            let task = Task { try await make() }
            inFlight[reference] = task
            defer { inFlight[reference] = nil }
            return try await task.value
        }
    }

    /// Deletes the images of earlier builds of `repository`, which would otherwise
    /// pile up (the engine simulator's is about 90 MB) with every rebuild.
    private static func removeStaleImages(of repository: String, keeping tag: String) {
        guard let listing = try? run(
            "podman", ["images", "--noheading", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference=\(repository)"])
        else { return }
        let stale = listing.output.split(separator: "\n").map(String.init)
            .filter { !$0.hasSuffix(":\(tag)") && !$0.hasSuffix(":latest") && !$0.hasSuffix(":<none>") }
        if !stale.isEmpty { _ = try? run("podman", ["rmi", "--force"] + stale) }
    }

    /// Writes a root filesystem tarball with `executable` at `pathInImage`, its
    /// `ldd` libraries at their own paths, and an empty `/tmp`.
    static func makeRootfsTar(executable: URL, at pathInImage: String, tarball: URL) throws {
        let files = FileManager.default
        let staging = tarball.deletingLastPathComponent()
            .appendingPathComponent("rootfs-\(UUID().uuidString.prefix(8))")
        defer { try? files.removeItem(at: staging) }
        func place(_ source: String, at path: String) throws {
            let destination = staging.appendingPathComponent(String(path.drop { $0 == "/" }))
            try files.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
            if files.fileExists(atPath: destination.path) { return }
            // Copy what a symlink points to: the link target is outside the rootfs.
            let resolved = URL(fileURLWithPath: source).resolvingSymlinksInPath().path
            try files.copyItem(atPath: resolved, toPath: destination.path)
        }
        try place(executable.path, at: pathInImage)
        for library in try sharedLibraries(of: executable) {
            try place(library, at: library)
        }
        let tmp = staging.appendingPathComponent("tmp")
        try files.createDirectory(at: tmp, withIntermediateDirectories: true)
        try files.setAttributes([.posixPermissions: 0o1777], ofItemAtPath: tmp.path)

        let tar = try run("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", staging.path, "-cf", tarball.path, "."])
        guard tar.status == 0 else { throw PodmanServiceError("tar failed: \(tar.output)") }
    }

    /// Absolute paths of the libraries and loader `ldd` lists; empty for a static binary.
    static func sharedLibraries(of executable: URL) throws -> [String] {
        let ldd = try run("ldd", [executable.path])
        if ldd.output.contains("not a dynamic executable") || ldd.output.contains("statically linked") { return [] }
        guard ldd.status == 0 else { throw PodmanServiceError("ldd \(executable.path) failed: \(ldd.output)") }
        var paths: [String] = []
        for line in ldd.output.split(separator: "\n") {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)",
            // "linux-vdso.so.1 (0x...)" (in the kernel, nothing to copy), "libx.so => not found".
            if line.contains("not found") {
                throw PodmanServiceError("ldd cannot find a library of \(executable.path): \(line)")
            }
            let target = line.split(separator: "=>").last ?? line
            if let path = target.split(whereSeparator: { $0 == " " || $0 == "\t" }).first(where: { $0.hasPrefix("/") }) {
                paths.append(String(path))
            }
        }
        return paths
    }

    // MARK: Helpers

    /// A TCP port that was free on 127.0.0.1 a moment ago, for a container's server.
    static func freeTCPPort() throws -> Int { Int(try Loopback.freePort()) }

    /// Runs a program found on PATH and returns its exit status and combined output.
    static func run(_ program: String, _ arguments: [String]) throws -> ChildProcess.Outcome {
        try ChildProcess.run(program, arguments)
    }

    private static func findExecutable(_ name: String, extraDirectories: [String] = []) -> String? {
        ChildProcess.find(name, extraDirectories: extraDirectories)
    }
}

/// Why the podman fixture could not do its part; the message says what to install or what failed.
struct PodmanServiceError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}
