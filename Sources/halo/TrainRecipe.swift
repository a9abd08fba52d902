/// Named configurations of `halo train` (`--recipe NAME`): the settings of the papers this project builds on,
/// written as the option files `--config` reads. Options given on the command line (or by `--config`) override them.
struct TrainRecipe {
    var name: String
    var summary: String
    var yaml: String

    static func named(_ name: String) -> TrainRecipe? { all.first { $0.name == name } }

    /// The architecture of the AdaQP and PipeQS sources (`algorithms.md` §2): 3 layers, hidden 256, LayerNorm,
    /// dropout 0.5, Adam lr 0.01 without weight decay; 250 epochs = 5 AdaQP assignment cycles of 50.
    private static let distributedReference = """
        model: gcn
        layers: 3
        hidden: 256
        norm: layernorm
        dropout: 0.5
        lr: 0.01
        weight-decay: 0
        epochs: 250
        """

    static let all: [TrainRecipe] = [
        TrainRecipe(name: "kipf-gcn", summary: "Kipf & Welling's GCN for citation graphs (Cora, CiteSeer, PubMed)", yaml: """
            model: gcn
            layers: 2
            hidden: 16
            norm: none
            dropout: 0.5
            input-dropout: 0.5
            normalize-features: true
            lr: 0.01
            weight-decay: 5e-4
            epochs: 200
            """),
        TrainRecipe(name: "adaqp", summary: "AdaQP as its paper runs it: adaptive 2/4/8-bit messages re-assigned every 50 epochs, overlapped",
                    yaml: distributedReference + """

            method: adaqp
            assign: adaptive
            assign-cycle: 50
            lambda: 0.5
            """),
        TrainRecipe(name: "pipegcn", summary: "PipeGCN: staleness 1 with smoothing 0.95 (PipeGCN-GF)", yaml: distributedReference + """

            method: pipegcn
            smoothing: 0.95
            """),
        TrainRecipe(name: "pipeqs", summary: "PipeQS: bounded staleness 2, bypass of late links, widths moved by drift and congestion",
                    yaml: distributedReference + """

            method: pipeqs
            max-staleness: 2
            initial-bits: 8
            """),
    ]
}
