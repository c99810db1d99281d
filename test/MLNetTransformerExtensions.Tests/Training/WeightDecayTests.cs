using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Runtime;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Tests.Training;

[TestClass]
public sealed class WeightDecayTests
{
    [TestMethod]
    [DataRow("bert")]
    [DataRow("distilbert")]
    [DataRow("roberta")]
    [DataRow("gpt2")]
    public void MatricesDecayAndVectorsDoNot(string family)
    {
        TorchRuntime.EnsureInitialized();
        var config = TransformerConfig.FromFolder(TestPaths.Fixtures("hf-tiny", family)).WithLabels(["a", "b"]);
        using var model = TransformerModels.CreateForSequenceClassification(config);
        var (decay, noDecay) = FineTuner.ParameterGroups(model);

        Assert.IsTrue(decay.All(p => p.Parameter.dim() >= 2), string.Join(", ", decay.Where(p => p.Parameter.dim() < 2).Select(p => p.Name)));
        Assert.IsTrue(noDecay.All(p => p.Parameter.dim() == 1), string.Join(", ", noDecay.Where(p => p.Parameter.dim() != 1).Select(p => p.Name)));
        Assert.IsTrue(decay.Any(p => p.Name.Contains("embeddings", StringComparison.Ordinal) || p.Name.Contains("wte", StringComparison.Ordinal)), "embeddings decay, as in nanoGPT and HuggingFace");
        Assert.IsTrue(noDecay.Any(p => p.Name.EndsWith(".bias", StringComparison.Ordinal)));
        Assert.AreEqual(model.parameters().Count(), decay.Count + noDecay.Count);
    }
}
