import Foundation
import HaloTraining
import XCTest

final class ResidentMemorySamplerTests: XCTestCase {
    /// 256 MiB touched and freed while sampling: the peak seen includes them although they are gone at the end.
    func testSeesMemoryFreedBeforeItStops() throws {
        let sampler = ResidentMemorySampler(interval: 0.01)
        let before = Double(ResourceUsage.residentBytes())
        do {
            let bytes = 256 << 20
            let block = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
            defer { block.deallocate() }
            // Touch every page so it is resident, and hold it for a few samples.
            for offset in stride(from: 0, to: bytes, by: 4096) { block.storeBytes(of: UInt8(1), toByteOffset: offset, as: UInt8.self) }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let peak = Double(sampler.stop())
        XCTAssertGreaterThan(peak, before + 200 * 1_048_576, "peak \(peak), before \(before)")
    }
}

final class ProcFieldTests: XCTestCase {
    /// The kernel pads to 8 columns: a peak of 10^7 kB or more has no space after the tab (12.2 GiB read as 0
    /// before this was fixed).
    func testReadsKilobytesWithAndWithoutPadding() {
        let status = "Name:\thalo\nVmPeak:\t 8302448 kB\nVmHWM:\t12461056 kB\nVmRSS:\t    2048 kB\n"
        XCTAssertEqual(ResourceUsage.kilobytes("VmHWM", in: status), 12_461_056)
        XCTAssertEqual(ResourceUsage.kilobytes("VmPeak", in: status), 8_302_448)
        XCTAssertEqual(ResourceUsage.kilobytes("VmRSS", in: status), 2048)
        XCTAssertNil(ResourceUsage.kilobytes("VmSwap", in: status))
        XCTAssertEqual(ResourceUsage.kilobytes("MemAvailable", in: "MemTotal:       24683784 kB\nMemAvailable:   22880000 kB\n"), 22_880_000)
        XCTAssertGreaterThan(ResourceUsage.peakResidentBytes(), 0, "this process has a peak")
    }
}
