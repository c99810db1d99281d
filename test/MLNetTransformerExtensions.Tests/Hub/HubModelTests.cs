using Microsoft.ML;
using MLNetTransformerExtensions.Hub;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Sources;
using MLNetTransformerExtensions.Tests.Training;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Tests.Hub;

/// <summary>A model fetched by hub id gives the same logits as the local folder, and trains through ML.NET by hub id.</summary>
[TestClass]
public sealed class HubModelTests : HubTestContext
{
    [TestMethod]
    public void AHubIdGivesTheSameLogitsAsTheLocalFolder()
    {
        using var hub = StartHub();
        var snapshot = ModelLocator.Resolve(HubStandIn.RepoId, Options(hub));

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = tensor(new long[] { 2, 15, 99, 203, 3 }, [1, 5]);
        var mask = ones_like(ids);
        using var local = TransformerModels.LoadForSequenceClassification(FixtureFolder, out _);
        using var downloaded = TransformerModels.LoadForSequenceClassification(snapshot, out var report);
        Assert.IsNotNull(report);
        Assert.IsTrue(report.IsComplete, report.ToString());
        Assert.AreEqual(0.0, (local.forward(ids, mask, null) - downloaded.forward(ids, mask, null)).abs().max().item<float>());

        var requests = hub.Requests.Count;
        ModelLocator.Resolve(HubStandIn.RepoId, Options(hub, offline: true));
        Assert.AreEqual(requests, hub.Requests.Count, "offline resolution uses the cache only");
    }

    [TestMethod]
    public void TheEncoderClassifierTrainsFromAHubId()
    {
        using var hub = StartHub();
        var (texts, labels) = SyntheticReviews.Binary(40, seed: 41);
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(texts.Select((t, i) => new MLNet.TransformerClassifierCatalogTests.BinaryReview { Text = t, Label = labels[i] == 1 }));
        var trainer = ml.BinaryClassification.Trainers.EncoderClassifier(new EncoderClassifierOptions
        {
            ModelPath = HubStandIn.RepoId,
            Hub = Options(hub),
            NumberOfEpochs = 1,
            BatchSize = 8,
            MaximumLength = 32,
        });
        var model = trainer.Fit(data);
        var metrics = ml.BinaryClassification.Evaluate(model.Transform(data));
        Assert.AreEqual(40, metrics.ConfusionMatrix.Counts.Sum(r => r.Sum()));
        Assert.IsTrue(Directory.Exists(SnapshotFolder));
    }
}
