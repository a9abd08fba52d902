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
