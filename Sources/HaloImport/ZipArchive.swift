import Foundation

/// The members of a zip archive (what `numpy.savez` and `savez_compressed` write), read through its central
/// directory, zip64 included (numpy forces zip64 headers). A member is stored or deflated; its CRC-32 is checked
/// as it is extracted. The archive is memory-mapped, so a stored member costs no copy.
struct ZipArchive {
    struct Member {
        let name: String
        let method: UInt16
        let crc: UInt32
        let compressedSize: Int
        let size: Int
        let localHeaderOffset: Int
    }

    let displayName: String
    private let bytes: Data
    private(set) var members: [String: Member] = [:]

    init(url: URL, displayName: String) throws {
        self.displayName = displayName
        do { bytes = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            let missing = !FileManager.default.fileExists(atPath: url.path)
            throw ImportError(missing ? .missingFile : .io, file: displayName, field: "file",
                              found: missing ? "missing" : "unreadable (\((error as NSError).localizedDescription))", expected: "a readable .npz file")
        }
        try readCentralDirectory()
    }

    private func archiveError(_ field: String, _ found: String, _ expected: String = "a valid zip archive (.npz)") -> ImportError {
        ImportError(.badArchive, file: displayName, field: field, found: found, expected: expected)
    }

    private func integer(at offset: Int, size: Int) throws -> Int {
        guard offset >= 0, offset + size <= bytes.count else {
            throw archiveError("structure at byte \(offset)", "beyond the end of the \(bytes.count)-byte file", "a complete zip archive (truncated download?)")
        }
        var value: UInt64 = 0
        for k in 0..<size { value |= UInt64(bytes[bytes.startIndex + offset + k]) << (8 * UInt64(k)) }
        guard value <= UInt64(Int.max) else { throw archiveError("field at byte \(offset)", "\(value)", "a size or offset this machine can address") }
        return Int(value)
    }

    private mutating func readCentralDirectory() throws {
        // The end-of-central-directory record: 22 bytes plus a comment of at most 65535 bytes, at the very end.
        let lowest = max(0, bytes.count - 22 - 65_535)
        var end = -1
        var candidate = bytes.count - 22
        while candidate >= lowest {
            if try integer(at: candidate, size: 4) == 0x0605_4B50 { end = candidate; break }
            candidate -= 1
        }
        guard end >= 0 else {
            throw archiveError("end of central directory", bytes.count < 4 ? "a \(bytes.count)-byte file" : "missing",
                               "a zip archive (.npz) — is the file complete, and is it an .npz?")
        }
        var entryCount = try integer(at: end + 10, size: 2)
        var directorySize = try integer(at: end + 12, size: 4)
        var directoryOffset = try integer(at: end + 16, size: 4)
        if entryCount == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            // Zip64: a locator just before the record points at the 64-bit record.
            guard end >= 20, try integer(at: end - 20, size: 4) == 0x0706_4B50 else {
                throw archiveError("zip64 end-of-central-directory locator", "missing")
            }
            let record = try integer(at: end - 12, size: 8)
            guard try integer(at: record, size: 4) == 0x0606_4B50 else { throw archiveError("zip64 end of central directory", "missing") }
            entryCount = try integer(at: record + 32, size: 8)
            directorySize = try integer(at: record + 40, size: 8)
            directoryOffset = try integer(at: record + 48, size: 8)
        }
        var offset = directoryOffset
        for index in 0..<entryCount {
            guard try integer(at: offset, size: 4) == 0x0201_4B50 else {
                throw archiveError("central directory entry \(index)", "no entry signature at byte \(offset)")
            }
            let flags = try integer(at: offset + 8, size: 2)
            let method = try integer(at: offset + 10, size: 2)
            let crc = try integer(at: offset + 16, size: 4)
            var compressedSize = try integer(at: offset + 20, size: 4)
            var size = try integer(at: offset + 24, size: 4)
            let nameLength = try integer(at: offset + 28, size: 2)
            let extraLength = try integer(at: offset + 30, size: 2)
            let commentLength = try integer(at: offset + 32, size: 2)
            var localOffset = try integer(at: offset + 42, size: 4)
            guard offset + 46 + nameLength + extraLength <= bytes.count else {
                throw archiveError("central directory entry \(index)", "name and extra fields beyond the end of the file",
                                   "a complete zip archive (truncated download?)")
            }
            let nameStart = bytes.startIndex + offset + 46
            let name = String(decoding: bytes[nameStart..<nameStart + nameLength], as: UTF8.self)
            // Zip64 extra field: the 64-bit values of exactly the 32-bit fields that are 0xFFFFFFFF, in this order.
            var extra = offset + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = try integer(at: extra, size: 2), length = try integer(at: extra + 2, size: 2)
                if id == 0x0001 {
                    var field = extra + 4
                    if size == 0xFFFF_FFFF { size = try integer(at: field, size: 8); field += 8 }
                    if compressedSize == 0xFFFF_FFFF { compressedSize = try integer(at: field, size: 8); field += 8 }
                    if localOffset == 0xFFFF_FFFF { localOffset = try integer(at: field, size: 8) }
                }
                extra += 4 + length
            }
            if flags & 1 != 0 { throw archiveError("member \(name)", "encrypted", "an unencrypted archive") }
            members[name] = Member(name: name, method: UInt16(method), crc: UInt32(crc), compressedSize: compressedSize, size: size,
                                   localHeaderOffset: localOffset)
            offset += 46 + nameLength + extraLength + commentLength
        }
        if offset - directoryOffset != directorySize {
            throw archiveError("central directory size", "\(offset - directoryOffset) bytes of entries", "\(directorySize) bytes, as the end record says")
        }
    }

    /// The uncompressed bytes of `name`, checked against the member's CRC-32. A stored member is the memory-mapped
    /// file itself; a deflated one is inflated whole (see `stream(of:)` for reading one a buffer at a time).
    func contents(of name: String) throws -> Data {
        let stream = try self.stream(of: name)
        let member = members[name]!
        if member.method == 0 {
            let stored = try storedBytes(of: member)
            var crc = CRC32()
            stored.withUnsafeBytes { crc.update($0) }
            guard crc.value == member.crc else {
                throw ImportError(.checksumMismatch, file: stream.displayName, field: "CRC-32", found: String(format: "%08x", crc.value),
                                  expected: String(format: "%08x", member.crc) + " as the archive records: the file is damaged")
            }
            return stored
        }
        var output = Data(count: member.size)
        try output.withUnsafeMutableBytes { out in
            var filled = 0
            while filled < out.count { filled += try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: out[filled...])) }
        }
        // The read at the end checks the stream's end and its CRC-32.
        var spare: UInt8 = 0
        _ = try withUnsafeMutableBytes(of: &spare) { try stream.read(into: $0) }
        return output
    }

    /// The uncompressed bytes of `name` a buffer at a time, inflated as they are read and checked at the end.
    func stream(of name: String) throws -> ZipMemberStream {
        guard let member = members[name] else {
            throw ImportError(.missingFile, file: "\(displayName)/\(name)", field: "member", found: "missing", expected: "present in the archive")
        }
        return try ZipMemberStream(stored: try storedBytes(of: member), method: member.method, size: member.size, crc: member.crc,
                                   displayName: "\(displayName)/\(name)")
    }

    /// The member's bytes as the archive stores them (compressed, for a deflated member), after its local header.
    private func storedBytes(of member: Member) throws -> Data {
        let name = member.name
        guard try integer(at: member.localHeaderOffset, size: 4) == 0x0403_4B50 else {
            throw archiveError("local header of \(name)", "no signature at byte \(member.localHeaderOffset)")
        }
        let nameLength = try integer(at: member.localHeaderOffset + 26, size: 2)
        let extraLength = try integer(at: member.localHeaderOffset + 28, size: 2)
        let start = member.localHeaderOffset + 30 + nameLength + extraLength
        guard start + member.compressedSize <= bytes.count else {
            throw archiveError("data of \(name)", "ends beyond the end of the \(bytes.count)-byte file", "a complete archive (truncated download?)")
        }
        return bytes[(bytes.startIndex + start)..<(bytes.startIndex + start + member.compressedSize)]
    }
}
