import ControlAPI
import FuzzSupport

// One body read as every JSON request body of the control port, decoded and
// validated as its route does (stream_started, stream_ended, provision, channels, import).
FuzzEntryPoint.run { input in
    _ = RequestBodyDecoding.acceptingRoutes(Array(input))
}
