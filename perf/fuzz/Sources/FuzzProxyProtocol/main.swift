import FuzzSupport
import ProxyProtocol

// A PROXY v1/v2 header as the stream port reads it, with the default v2 bound
// and a small one (the first byte picks), so both length checks are reached.
FuzzEntryPoint.run { input in
    guard let first = input.first else { return }
    let rest = UnsafeRawBufferPointer(rebasing: input.dropFirst())
    let limit = first & 1 == 0 ? ProxyProtocolParser.defaultMaximumV2Length : 16 + Int(first)
    _ = ProxyProtocolParser.parse(rest, maximumV2Length: limit)
}
