// swift-tools-version: 6.0
//
// A program that trains a model through Halo's library (`HaloTraining`), depending on this repository by path.
// Build and run it from this folder:  swift run -c release TrainWithHalo
import PackageDescription

let package = Package(
    name: "TrainWithHalo",
    dependencies: [.package(path: "../Halo")],
    targets: [
        .executableTarget(
            name: "TrainWithHalo",
            dependencies: [
                .product(name: "HaloTraining", package: "Halo"),
            ]
        ),
    ]
)
