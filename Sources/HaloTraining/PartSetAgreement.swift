import HaloPartition
import HaloTransport

/// The cross-part checks of a partition directory when each rank has loaded only its own part.
public enum PartSetAgreement {
    /// Gathers every rank's `PartSetTally` (one broadcast per rank: a few hundred bytes each) and checks them all
    /// with `PartSetTally.verify`. Every rank gathers the same tallies and so throws the same error, or none: no
    /// rank goes on to train while another stops. Call it on every rank, right after loading the part.
    public static func check(part: Part, manifest: PartitionManifest, directory: String, transport: any Transport) throws {
        let mine = PartSetTally(part)
        var tallies: [PartSetTally] = []
        for root in 0..<transport.worldSize {
            var bytes = root == transport.rank ? mine.bytes : []
            try transport.broadcast(&bytes, root: root)
            guard let tally = PartSetTally(bytes: bytes) else {
                throw TransportError.invalidArgument("rank \(root) sent \(bytes.count) bytes, not a part tally")
            }
            tallies.append(tally)
        }
        try PartSetTally.verify(tallies, manifest: manifest, directory: directory)
    }
}
