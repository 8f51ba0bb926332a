import Foundation

extension DockerClient {
    /// Imports a root filesystem tarball as an image and returns its reference,
    /// `repository:tag` (`POST /images/create?fromSrc=-`).
    ///
    /// This is how images are made without a registry. podman ignores `tag` on
    /// import and names the image `repository:latest`, so when `repository:tag`
    /// does not exist afterwards the imported image is tagged explicitly; the
    /// reference returned always resolves.
    /// - Parameter timeout: limit for the upload and import; tarballs can be large.
    /// - Throws: `unreadableFile` when the tarball cannot be opened, `apiError` when the daemon rejects it.
    public func importImage(
        rootfsTar: URL, repository: String, tag: String = "latest", timeout: Duration = .seconds(300)
    ) async throws(DockerError) -> String {
        let request = EngineRequest(
            method: .post, path: "/images/create",
            query: [("fromSrc", "-"), ("repo", repository), ("tag", tag)],
            body: .file(path: rootfsTar.path, contentType: "application/x-tar"),
            timeout: timeout)
        let response = try await send(request)
        try expect(response, 200, 201)
        let imageID = try Self.importedImageID(response)

        let reference = "\(repository):\(tag)"
        if try await !imageExists(reference) {
            let tagRequest = EngineRequest(
                method: .post, path: "/images/\(EngineRequest.encodePathElement(imageID, keepingSlash: true))/tag",
                query: [("repo", repository), ("tag", tag)], timeout: requestTimeout)
            try expect(try await send(tagRequest), 201, 200)
        }
        return reference
    }

    /// True when the daemon has an image under `reference` (a name[:tag] or an id).
    public func imageExists(_ reference: String) async throws(DockerError) -> Bool {
        let path = "/images/\(EngineRequest.encodePathElement(reference, keepingSlash: true))/json"
        let response = try await send(EngineRequest(method: .get, path: path, timeout: requestTimeout))
        if response.status == 404 { return false }
        try expect(response, 200)
        return true
    }

    /// Removes an image (`DELETE /images/{reference}`); `force` also removes it
    /// when containers (stopped ones) still use it.
    public func removeImage(_ reference: String, force: Bool = false) async throws(DockerError) {
        let request = EngineRequest(
            method: .delete, path: "/images/\(EngineRequest.encodePathElement(reference, keepingSlash: true))",
            query: [("force", force ? "true" : "false")], timeout: requestTimeout)
        try expect(try await send(request), 200)
    }

    /// The image id from an import's progress stream: one JSON object per line,
    /// the id in `status` (Docker) or `id` (podman); a failure arrives as an
    /// `error` line under status 200.
    package static func importedImageID(_ response: EngineResponse) throws(DockerError) -> String {
        var imageID: String?
        for line in response.body.split(separator: UInt8(ascii: "\n")) {
            guard let message = try? JSONDecoder().decode(ProgressMessage.self, from: Data(line)) else { continue }
            if let error = message.errorDetail?.message ?? message.error {
                throw .apiError(status: response.status, message: error)
            }
            if let id = message.id, id.hasPrefix("sha256:") {
                imageID = id
            } else if let status = message.status, status.hasPrefix("sha256:") {
                imageID = status
            }
        }
        guard let imageID else {
            let text = String(decoding: response.body.prefix(200), as: UTF8.self)
            throw .decoding(what: "image import", detail: "no image id in \"\(text)\"")
        }
        return imageID
    }
}

private struct ProgressMessage: Decodable {
    struct Detail: Decodable {
        var message: String?
    }
    var status: String?
    var id: String?
    var error: String?
    var errorDetail: Detail?
}
