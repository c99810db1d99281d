using System.Text.Json.Nodes;
using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Modeling;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Tests.Modeling;

/// <summary>Every constant of config.json reaches the model (a wrong LayerNorm epsilon hides below the parity tolerance).</summary>
[TestClass]
public sealed class ConfigTests
{
    [TestMethod]
    public void FixtureConfigsAreReadWithEveryFamilysKeyNames()
    {
        var bert = TransformerConfig.FromFolder(TestPaths.Fixtures("hf-tiny", "bert"));
        Assert.AreEqual((ModelFamily.Bert, 64, 2, 4, 37, 128, 1500, 1e-12, Activation.Gelu, 3), (bert.Family, bert.HiddenSize, bert.NumLayers, bert.NumHeads, bert.IntermediateSize, bert.MaxPositions, bert.VocabSize, bert.LayerNormEps, bert.HiddenAct, bert.NumLabels));
        var distil = TransformerConfig.FromFolder(TestPaths.Fixtures("hf-tiny", "distilbert"));
        Assert.AreEqual((ModelFamily.DistilBert, 48, 2, 4, 75, 64, 1e-12, 2), (distil.Family, distil.HiddenSize, distil.NumLayers, distil.NumHeads, distil.IntermediateSize, distil.MaxPositions, distil.LayerNormEps, distil.NumLabels));
        var roberta = TransformerConfig.FromFolder(TestPaths.Fixtures("hf-tiny", "roberta"));
        Assert.AreEqual((ModelFamily.Roberta, 32, 53, 66, 1461, 1e-5, 1), (roberta.Family, roberta.HiddenSize, roberta.IntermediateSize, roberta.MaxPositions, roberta.VocabSize, roberta.LayerNormEps, roberta.PadTokenId));
        var gpt2 = TransformerConfig.FromFolder(TestPaths.Fixtures("hf-tiny", "gpt2"));
        Assert.AreEqual((ModelFamily.Gpt2, 64, 256, 128, 1457, 1e-5, Activation.GeluTanh), (gpt2.Family, gpt2.HiddenSize, gpt2.IntermediateSize, gpt2.MaxPositions, gpt2.VocabSize, gpt2.LayerNormEps, gpt2.HiddenAct));
    }

    [TestMethod]
    [DataRow("bert", "layer_norm_eps")]
    [DataRow("roberta", "layer_norm_eps")]
    [DataRow("gpt2", "layer_norm_epsilon")]
    [DataRow("bert", "hidden_act")]
    [DataRow("distilbert", "activation")]
    [DataRow("roberta", "hidden_act")]
    [DataRow("gpt2", "activation_function")]
    public void ChangingAConstantChangesTheLogits(string family, string key)
    {
        var folder = TestPaths.Fixtures("hf-tiny", family);
        var weights = SafeTensorsFile.Read(Path.Combine(folder, "model.safetensors"));
        var original = TransformerConfig.FromFolder(folder);
        var json = (JsonObject)original.Json.DeepClone();
        json[key] = key.Contains("eps", StringComparison.Ordinal) || key.Contains("epsilon", StringComparison.Ordinal) ? 0.5 : JsonValue.Create("relu");
        var changed = TransformerConfig.Parse(json);

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = tensor(new long[] { 5, 17, 42, 99, 7, 3 }, [1, 6]);
        var mask = ones_like(ids);
        Tensor Logits(TransformerConfig config)
        {
            var model = TransformerModels.CreateForSequenceClassification(config);
            TransformerModels.LoadWeights(model, weights, folder);
            model.eval();
            return model.forward(ids, mask, null);
        }

        var difference = (Logits(original) - Logits(changed)).abs().max().item<float>();
        Assert.IsTrue(difference > 1e-3, $"{family}: changing {key} moved the logits by only {difference:E2}");
    }

    [TestMethod]
    public void InconsistentConfigsAreRejectedWithTheReason()
    {
        var json = (JsonObject)TransformerConfig.FromFolder(TestPaths.Fixtures("hf-tiny", "bert")).Json.DeepClone();
        json["num_attention_heads"] = 5;
        var error = Assert.ThrowsExactly<InvalidDataException>(() => TransformerConfig.Parse(json, "x/config.json"));
        StringAssert.Contains(error.Message, "hidden size 64 is not divisible by 5 heads");

        json = new JsonObject { ["model_type"] = "electra" };
        error = Assert.ThrowsExactly<InvalidDataException>(() => TransformerConfig.Parse(json, "x/config.json"));
        StringAssert.Contains(error.Message, "electra");
    }
}

/// <summary>Building and disposing a model leaves no tensor behind.</summary>
[TestClass]
public sealed class ModelLifetimeTests
{
    [TestMethod]
    [DataRow("hf-tiny", "bert")]
    [DataRow("hf-tiny", "distilbert")]
    [DataRow("hf-tiny-lm", "roberta")]
    [DataRow("hf-tiny-lm", "gpt2")]
    public void CreatingAndDisposingModelsLeavesNoTensors(string set, string family)
    {
        var config = TransformerConfig.FromFolder(TestPaths.Fixtures(set, family));
        TransformerModels.CreateForSequenceClassification(config).Dispose();
        TransformerModels.CreateForLanguageModeling(config).Dispose();
        var before = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (var i = 0; i < 3; i++)
        {
            TransformerModels.CreateForSequenceClassification(config).Dispose();
            TransformerModels.CreateForLanguageModeling(config).Dispose();
        }

        Assert.AreEqual(before, TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [TestMethod]
    public void AWeightOfTheRightSizeButAnotherShapeIsRefusedNamingTheFileTheTensorAndBothShapes()
    {
        // The same bytes, another shape: only the config tells them apart.
        var work = TestPaths.NewTempDirectory();
        try
        {
            var source = TestPaths.Fixtures("hf-tiny", "bert");
            foreach (var file in Directory.GetFiles(source))
            {
                File.Copy(file, Path.Combine(work, Path.GetFileName(file)));
            }

            const string key = "bert.encoder.layer.0.intermediate.dense.weight";
            var weights = Path.Combine(work, "model.safetensors");
            using (var scope = NewDisposeScope())
            {
                var tensors = SafeTensorsFile.Read(weights);
                tensors[key] = tensors[key].reshape(64, 37);
                SafeTensorsFile.Write(weights, tensors);
            }

            var error = Assert.ThrowsExactly<InvalidDataException>(() =>
                TransformerModels.LoadForSequenceClassification(work, out _).Dispose());

            StringAssert.Contains(error.Message, $"Tensor '{key}' in '{weights}' has shape [64, 37]");
            StringAssert.Contains(error.Message, $"the model built from '{Path.Combine(work, "config.json")}' expects [37, 64]");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
