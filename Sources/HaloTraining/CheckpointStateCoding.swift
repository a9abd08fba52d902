import HaloQuantization

/// State bytes in a checkpoint that do not fit the run restoring them. The file's checksum has already matched,
/// so this is not corruption: the checkpoint was written by a run with other settings (or another version).
public struct CheckpointStateError: Error, CustomStringConvertible {
    public var what: String
    public init(_ what: String) { self.what = what }
    public var description: String { "the checkpoint's state does not fit this run: unexpected \(what)" }
}

extension BitWidth {
    /// A width read back from a checkpoint.
    init(checkpointed rawValue: Int) throws {
        guard let width = BitWidth(rawValue: rawValue) else { throw CheckpointStateError("bit width \(rawValue)") }
        self = width
    }
}

extension BitAssignment {
    func write(to writer: inout ByteWriter) {
        switch self {
        case .uniform(let width):
            writer.append(0)
            writer.append(width.rawValue)
        case .perRow(let widths):
            writer.append(1)
            writer.append(elements: widths.map { UInt8($0.rawValue) })
        }
    }

    init(from reader: inout ByteReader) throws {
        let kind: Int = try reader.read()
        switch kind {
        case 0: self = .uniform(try BitWidth(checkpointed: try reader.read()))
        case 1: self = .perRow(try reader.readElements(of: UInt8.self).map { try BitWidth(checkpointed: Int($0)) })
        default: throw CheckpointStateError("bit assignment kind \(kind)")
        }
    }
}
