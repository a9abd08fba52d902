/// One scalar of a TensorBoard summary: a named value at a step.
public struct TensorBoardScalar: Equatable, Sendable {
    /// The chart's name; TensorBoard groups charts by the part before the first "/".
    public var tag: String
    public var value: Float

    public init(tag: String, value: Float) {
        self.tag = tag
        self.value = value
    }
}

/// A TensorBoard `Event` message (tensorflow/core/util/event.proto), reduced to what scalar logs use:
/// `wall_time` (field 1, double), `step` (2, int64), and either `file_version` (3, string, the first event of every
/// file) or `summary` (5, a `Summary` of `value`s (1), each with `tag` (1, string) and `simple_value` (2, float)).
public struct TensorBoardEvent: Equatable, Sendable {
    public enum Content: Equatable, Sendable {
        /// The version header TensorBoard looks for in a file's first event.
        case fileVersion(String)
        case scalars([TensorBoardScalar])
    }

    /// The version string of event files TensorBoard reads today.
    public static let currentFileVersion = "brain.Event:2"

    /// Seconds since 1970.
    public var wallTime: Double
    public var step: Int64
    public var content: Content

    public init(wallTime: Double, step: Int64, content: Content) {
        self.wallTime = wallTime
        self.step = step
        self.content = content
    }

    /// The protobuf encoding of the event.
    public func encoded() -> [UInt8] {
        var event = ProtobufWriter()
        event.appendDouble(field: 1, wallTime)
        event.appendInt64(field: 2, step)
        switch content {
        case .fileVersion(let version):
            event.appendString(field: 3, version)
        case .scalars(let scalars):
            var summary = ProtobufWriter()
            for scalar in scalars {
                var value = ProtobufWriter()
                value.appendString(field: 1, scalar.tag)
                value.appendFloat(field: 2, scalar.value)
                summary.appendBytes(field: 1, value.bytes)
            }
            event.appendBytes(field: 5, summary.bytes)
        }
        return event.bytes
    }
}
