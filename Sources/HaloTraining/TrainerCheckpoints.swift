import HaloGraph
import HaloNN
import HaloTensor

/// Saving a trainer's state into a checkpoint folder and taking it back (the protocol is on `CheckpointDirectory`).
extension Trainer {
    /// What a resumed run starts from.
    struct ResumedRun {
        var epochsDone: Int
        var records: [EpochRecord]
        var trainingSeconds: Double
    }

    /// Saves this rank's state after `epochsDone` epochs. Collective: every rank calls it after the same epoch.
    func saveCheckpoint(_ plan: CheckpointPlan, epochsDone: Int, records: [EpochRecord], trainingSeconds: Double) throws {
        var exchangeState = ByteWriter()
        try exchange.saveState(into: &exchangeState)
        var residuals = ByteWriter()
        gradientReduction?.saveState(into: &residuals)
        let state = RankCheckpoint(
            header: .init(epochsDone: epochsDone, rank: collectives.rank, worldSize: collectives.worldSize,
                          shardDigest: XXHash64.hex(shard.digest), configuration: configuration),
            parameters: model.parameters.map {
                .init(name: $0.name, rows: $0.value.rows, cols: $0.value.cols, values: $0.value.storage)
            },
            optimizer: optimizer.state, records: records, trainingSeconds: trainingSeconds,
            exchangeState: exchangeState.bytes, gradientResiduals: residuals.bytes)
        try plan.directory.writeState(try state.encoded(), epochsDone: epochsDone, rank: collectives.rank)
        // Every rank's state is on disk before the manifest names the epoch, and the manifest names it before any
        // rank removes the state it replaces.
        var written = [1.0]
        try collectives.allReduceSum(&written)
        if collectives.rank == 0 {
            try plan.directory.commit(CheckpointManifest(epochsDone: epochsDone, worldSize: collectives.worldSize,
                                                         configuration: configuration))
        }
        var committed = [1.0]
        try collectives.allReduceSum(&committed)
        plan.directory.prune(rank: collectives.rank, keeping: epochsDone)
    }

    /// Takes back this rank's state from the folder's checkpoint. Collective: rank 0 reads the manifest and tells
    /// the others which epoch to load (their hosts need not hold the manifest).
    func restoreCheckpoint(_ plan: CheckpointPlan) throws -> ResumedRun {
        var epochs = [0.0]
        if collectives.rank == 0 {
            let manifest = try plan.directory.readManifest()
            try manifest.checkResumable(as: configuration, worldSize: collectives.worldSize, path: plan.directory.path)
            epochs[0] = Double(manifest.epochsDone)
        }
        try collectives.allReduceSum(&epochs)
        let epochsDone = Int(epochs[0])
        let state = try plan.directory.readState(epochsDone: epochsDone, rank: collectives.rank)
        let file = "\(plan.directory.path)/\(CheckpointManifest.stateFolder(epochsDone: epochsDone))/rank-\(collectives.rank).state"
        func refuse(_ reason: String) -> CheckpointError { CheckpointError(path: file, reason: reason) }
        let header = state.header
        guard header.epochsDone == epochsDone, header.rank == collectives.rank,
              header.worldSize == collectives.worldSize else {
            throw refuse("holds rank \(header.rank) of \(header.worldSize) after \(header.epochsDone) epochs; expected rank \(collectives.rank) of \(collectives.worldSize) after \(epochsDone)")
        }
        let digest = XXHash64.hex(shard.digest)
        guard header.shardDigest == digest else {
            throw refuse("rank \(collectives.rank) trains on other data than the run that saved it (shard digest \(digest), saved \(header.shardDigest)): another dataset, or another partitioning of it")
        }
        let differences = CheckpointManifest.differences(saved: header.configuration, given: configuration)
        guard differences.isEmpty else {
            throw refuse("was saved by a run with other settings: " + differences.joined(separator: "; "))
        }
        let parameters = model.parameters
        guard state.parameters.map(\.name) == parameters.map(\.name),
              zip(state.parameters, parameters).allSatisfy({ $0.rows == $1.value.rows && $0.cols == $1.value.cols && $0.values.count == $1.count }) else {
            throw refuse("its parameters (\(state.parameters.map { "\($0.name) \($0.rows)×\($0.cols)" }.joined(separator: ", "))) do not fit this model")
        }
        if let refusal = optimizer.refusal(of: state.optimizer) {
            throw refuse("its optimiser state does not fit this model: \(refusal)")
        }
        // One optimiser step per finished epoch: Adam's bias correction rests on the count.
        guard state.optimizer.stepCount == epochsDone else {
            throw refuse("its optimiser took \(state.optimizer.stepCount) steps in \(epochsDone) epochs")
        }
        for (saved, parameter) in zip(state.parameters, parameters) {
            parameter.value = Matrix(rows: saved.rows, cols: saved.cols, storage: saved.values)
        }
        optimizer.restore(state.optimizer)
        var reader = ByteReader(state.exchangeState)
        do {
            try exchange.restoreState(from: &reader, epochsDone: epochsDone)
            guard reader.remaining == 0 else { throw CheckpointStateError("\(reader.remaining) bytes after the exchange's state") }
        } catch {
            throw refuse("\(error)")
        }
        if let gradientReduction {
            var residuals = ByteReader(state.gradientResiduals)
            do {
                try gradientReduction.restoreState(from: &residuals)
                guard residuals.remaining == 0 else { throw CheckpointStateError("\(residuals.remaining) bytes after the gradient residuals") }
            } catch {
                throw refuse("\(error)")
            }
        }
        guard state.records.count == epochsDone else {
            throw refuse("holds \(state.records.count) epoch records for \(epochsDone) epochs")
        }
        return ResumedRun(epochsDone: epochsDone, records: state.records, trainingSeconds: state.trainingSeconds)
    }
}
