using System.Text.Json;
using System.Text.Json.Nodes;
using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tests.Cli;
using MLNetTransformerExtensions.Training;
using MLNetTransformerExtensions.Training.Pretraining;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Tests.Training.Pretraining;

/// <summary>
/// The exported folder is HuggingFace's layout (the same keys as a folder HuggingFace wrote) and loads into the
/// classifiers and the <c>logits</c> command with the logits of the model that was trained.
/// </summary>
[TestClass]
public sealed class PretrainedExportTests
{
    private const string EncoderText = "the tokenizer reads chapter [MASK] and then the reader writes.";
    private const string DecoderText = "The tokenizer reads chapter 7, and then the";

    [TestMethod]
    [DataRow(PretrainingKind.Encoder, "bert", "BertForMaskedLM")]
    [DataRow(PretrainingKind.Decoder, "gpt2", "GPT2LMHeadModel")]
    public void TheFolderHasHuggingFacesKeysAndFiles(PretrainingKind kind, string fixture, string architecture)
    {
        using var workspace = new PretrainingWorkspace();
        using var result = Pretrainer.Train(workspace.Files, workspace.Output("model"), PretrainingWorkspace.Options(kind) with { Steps = 3 });
        var reference = TestPaths.Fixtures("hf-tiny-lm", fixture);

        // Same layer count as the HuggingFace fixture, so the key sets must be equal: head included, tied decoders left out.
        CollectionAssert.AreEquivalent(
            SafeTensorsFile.ReadHeader(Path.Combine(reference, "model.safetensors")).Keys.ToList(),
            SafeTensorsFile.ReadHeader(Path.Combine(result.OutputFolder, "model.safetensors")).Keys.ToList());

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(result.OutputFolder, "config.json")))!.AsObject();
        var referenceConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(reference, "config.json")))!.AsObject();
        Assert.AreEqual(architecture, config["architectures"]![0]!.GetValue<string>());
        foreach (var (key, _) in referenceConfig.Where(p => p.Key != "transformers_version"))
        {
            Assert.IsTrue(config.ContainsKey(key), $"config.json lacks '{key}', which HuggingFace writes");
        }

        foreach (var file in Directory.EnumerateFiles(reference).Select(Path.GetFileName).Where(f => f is not ("expected.json" or "generation_config.json")))
        {
            Assert.IsTrue(File.Exists(Path.Combine(result.OutputFolder, file!)), $"{file} is missing");
        }

        var tokenizerConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(result.OutputFolder, "tokenizer_config.json")))!;
        Assert.AreEqual(32, tokenizerConfig["model_max_length"]!.GetValue<int>(), "the tokenizer truncates where the positions end");
        var readme = File.ReadAllText(Path.Combine(result.OutputFolder, "README.md"));
        StringAssert.Contains(readme, "part-1.txt");
        StringAssert.Contains(readme, "perplexity");
    }

    [TestMethod]
    public void AnEncoderLoadsIntoTheClassifiersAndTheLogitsCommandWithTheSameOutputs()
    {
        using var workspace = new PretrainingWorkspace();
        using var result = Pretrainer.Train(workspace.Files, workspace.Output("model"), PretrainingWorkspace.Options(PretrainingKind.Encoder) with { Steps = 6 });
        var folder = result.OutputFolder;
        var encoded = result.Tokenizer.Encode(EncoderText, null, 32);
        var maskPosition = Array.IndexOf(encoded.InputIds, result.Tokenizer.MaskTokenId!.Value);
        Assert.IsGreaterThan(0, maskPosition);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (ids, mask) = (tensor(encoded.InputIds.Select(i => (long)i).ToArray(), [1, encoded.Length]), ones(1, encoded.Length, ScalarType.Int64));
        var hidden = result.Model.HiddenStates(ids, mask, null);
        var expected = result.Model.PredictTokens(hidden[0, maskPosition]).data<float>().ToArray();

        // A classification head on the pretrained body: the body's states are the trained model's.
        using (var classifier = HeadClassifier.FromPretrained(folder, ["negative", "positive"], ClassifierKind.Encoder, 32, 1, out var report))
        {
            classifier.Model.eval();
            Assert.IsTrue(Same(hidden, classifier.Model.HiddenStates(ids, mask, zeros_like(ids))), "HeadClassifier body");
            CollectionAssert.IsSubsetOf(new[] { "classifier.weight", "classifier.bias" }, report!.Missing.ToList());
            Assert.HasCount(2, classifier.PredictProbabilities([EncoderText], null)[0]);
        }

        // The masked-LM head scores label words: its logits are the trained model's.
        using (var prompt = PromptClassifier.FromPretrained(folder, ["first", "second"], ClassifierKind.Encoder,
            new PromptOptions { Template = "{text} It was {mask}.", LabelWords = ["the", "and"] }, 32, 1, out var report))
        {
            Assert.IsTrue(report!.IsComplete, report.ToString());
            prompt.Model.eval();
            var logits = prompt.Model.PredictTokens(prompt.Model.HiddenStates(ids, mask, null)[0, maskPosition]).data<float>().ToArray();
            CollectionAssert.AreEqual(expected, logits, "PromptClassifier masked-LM logits");
        }

        CollectionAssert.AreEqual(expected, LogitsCommand(folder, EncoderText, workspace), "logits --head lm");
    }

    [TestMethod]
    public void ADecoderLoadsIntoThePromptClassifierAndTheLogitsCommandWithTheSameOutputs()
    {
        using var workspace = new PretrainingWorkspace();
        using var result = Pretrainer.Train(workspace.Files, workspace.Output("model"), PretrainingWorkspace.Options(PretrainingKind.Decoder) with { Steps = 6 });
        var folder = result.OutputFolder;
        var encoded = result.Tokenizer.Encode(DecoderText, null, 32);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (ids, mask) = (tensor(encoded.InputIds.Select(i => (long)i).ToArray(), [1, encoded.Length]), ones(1, encoded.Length, ScalarType.Int64));
        var hidden = result.Model.HiddenStates(ids, mask, null);
        var expected = result.Model.PredictTokens(hidden[0, encoded.Length - 1]).data<float>().ToArray();

        using (var classifier = HeadClassifier.FromPretrained(folder, ["negative", "positive"], ClassifierKind.Decoder, 32, 1, out _))
        {
            classifier.Model.eval();
            Assert.IsTrue(Same(hidden, classifier.Model.HiddenStates(ids, mask, null)), "HeadClassifier body");
        }

        using (var prompt = PromptClassifier.FromPretrained(folder, ["first", "second"], ClassifierKind.Decoder,
            new PromptOptions { Template = "{text}", LabelWords = [" the", " and"] }, 32, 1, out var report))
        {
            Assert.IsTrue(report!.IsComplete, report.ToString());
            prompt.Model.eval();
            var logits = prompt.Model.PredictTokens(prompt.Model.HiddenStates(ids, mask, null)[0, encoded.Length - 1]).data<float>().ToArray();
            CollectionAssert.AreEqual(expected, logits, "PromptClassifier causal-LM logits");
        }

        CollectionAssert.AreEqual(expected, LogitsCommand(folder, DecoderText, workspace), "logits --head lm");
    }

    private static bool Same(Tensor expected, Tensor actual) => expected.shape.SequenceEqual(actual.shape) && expected.eq(actual).all().item<bool>();

    private static float[] LogitsCommand(string folder, string text, PretrainingWorkspace workspace)
    {
        var input = workspace.Write("input.txt", text + "\n");
        var (exit, stdout, stderr) = CliRunner.Run($"logits --model \"{folder}\" --input \"{input}\" --head lm");
        Assert.AreEqual(0, exit, stderr);
        using var line = JsonDocument.Parse(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Single());
        return [.. line.RootElement.GetProperty("logits").EnumerateArray().Select(v => (float)v.GetDouble())];
    }
}
