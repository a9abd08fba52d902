import Foundation

/// What a measured number depends on about the machine: the CPU (as /proc/cpuinfo names it), the vector ISA the
/// kernels can use, and the kernel family OpenBLAS chose. Recorded beside calibration rates so that a number is
/// never read without its machine, and part of the calibration cache's key.
public struct HostDescription: Sendable, Codable, Equatable {
    /// /proc/cpuinfo's model name with its family and model numbers, e.g. "AMD EPYC (family 25, model 17)":
    /// virtual machines often report only a generic name.
    public var cpuModel: String
    /// The vector extensions among `relevantFlags` the CPU reports, in that order.
    public var isa: [String]
    /// OpenBLAS's kernel family (`BLASRuntime.coreName`), e.g. "SkylakeX" or "Zen".
    public var blasCore: String

    /// The CPU flags that change which kernels run fast (Swift's SIMD16 lowers to one AVX-512 register or two
    /// AVX2 ones; OpenBLAS picks its family from them).
    public static let relevantFlags = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl"]

    public init(cpuModel: String, isa: [String], blasCore: String) {
        self.cpuModel = cpuModel
        self.isa = isa
        self.blasCore = blasCore
    }

    /// This machine, from /proc/cpuinfo ("unknown" fields where it cannot be read) and the loaded OpenBLAS.
    public static var current: HostDescription {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        return HostDescription(cpuinfo: cpuinfo, blasCore: BLASRuntime.coreName)
    }

    /// The description in the text of /proc/cpuinfo (its first processor's entry).
    public init(cpuinfo: String, blasCore: String) {
        var fields: [String: String] = [:]
        for line in cpuinfo.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces)
            if fields[name] == nil { fields[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
        }
        var model = fields["model name"] ?? "unknown CPU"
        if let family = fields["cpu family"], let number = fields["model"] { model += " (family \(family), model \(number))" }
        let flags = Set((fields["flags"] ?? "").split(separator: " ").map(String.init))
        self.init(cpuModel: model, isa: Self.relevantFlags.filter(flags.contains), blasCore: blasCore)
    }

    /// One line for logs and documents: "AMD EPYC (family 25, model 17), avx2 fma avx512f …, OpenBLAS SkylakeX".
    public var summary: String {
        "\(cpuModel), \(isa.isEmpty ? "no AVX" : isa.joined(separator: " ")), OpenBLAS \(blasCore)"
    }
}
