import HaloNN
import HaloTraining

// Four ranks (threads of this process) train a 2-layer GraphSAGE on a synthetic graph Halo generates, with
// AdaQP's quantized messages, and report the test accuracy at the best validation epoch.
let dataset = "synthetic:nodes=4000,classes=5,features=32,degree=10,seed=3"
let configuration = TrainingConfiguration(
    dataset: dataset,
    model: ModelConfiguration(kind: .sage, layers: 2, hiddenWidth: 64, dropout: 0.5),
    optimizer: Adam.Hyperparameters(learningRate: 0.01),
    epochs: 30, seed: 0, method: .adaqp)

var job = TrainingJob(configuration: configuration, source: .dataset(dataset), ranks: .threads(4))
job.log = { print("halo:", $0) }
let report = try job.run(onEpoch: { epoch in
    if (epoch.epoch + 1) % 10 == 0 {
        print("epoch \(epoch.epoch + 1): loss \(epoch.loss), bytes sent \(epoch.bytesSent)")
    }
})
let accuracy = report.testAccuracyAtBestValidation ?? 0
print("test accuracy at best validation: \(accuracy) (\(report.metric?.rawValue ?? "accuracy"))")
// A run that learnt nothing would sit near 1/5 on five balanced classes.
guard accuracy > 0.5 else { fatalError("the example did not learn: \(accuracy)") }
