using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;
using MLNetTransformerExtensions.Training.Pretraining;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Tests.Training.Pretraining;

/// <summary>Pretraining end to end on a generated corpus: the loss falls, resuming is exact, checkpoints are checked.</summary>
[TestClass]
public sealed class PretrainerTests
{
    [TestMethod]
    [DataRow(PretrainingKind.Encoder)]
    [DataRow(PretrainingKind.Decoder)]
    public void ATinyRunLowersTheLoss(PretrainingKind kind)
    {
        using var workspace = new PretrainingWorkspace();
        var losses = new List<double>();
        var progress = new InPlaceProgress<PretrainingProgress>(p =>
        {
            if (p.Stage == PretrainingStage.Training)
            {
                losses.Add(p.Loss);
            }
        });

        using var result = Pretrainer.Train(workspace.Files, workspace.Output("model"), PretrainingWorkspace.Options(kind) with { Steps = 30 }, progress);

        Assert.HasCount(30, losses, "one report per step");
        Assert.AreEqual(30, result.Steps);
        Assert.IsTrue(result.TrainedTokenizer);
        Assert.IsGreaterThan(0, result.ValidationSequences);
        Assert.IsLessThan(result.InitialValidationLoss!.Value - 1.0, result.ValidationLoss!.Value,
            $"validation loss {result.InitialValidationLoss:0.000} -> {result.ValidationLoss:0.000}");
        Assert.IsLessThan(losses[0] - 1.0, losses[^1], $"training loss {losses[0]:0.000} -> {losses[^1]:0.000}");
        Assert.AreEqual(Math.Exp(result.ValidationLoss.Value), result.ValidationPerplexity!.Value, 1e-9);
        Assert.IsGreaterThan(0.0, result.TokensPerSecond);
        Assert.AreEqual(kind == PretrainingKind.Encoder ? "bert" : "gpt2", result.Model.Config.Json["model_type"]!.GetValue<string>());
    }

    [TestMethod]
    [DataRow(PretrainingKind.Encoder)]
    [DataRow(PretrainingKind.Decoder)]
    public void AResumedRunEndsWithTheWeightsOfAnUninterruptedOne(PretrainingKind kind)
    {
        using var workspace = new PretrainingWorkspace();
        // 20 steps of 8 span several epochs of the held-in sequences, so the resume crosses epoch boundaries and shuffles.
        var options = PretrainingWorkspace.Options(kind) with { CheckpointEvery = 4, EvaluateEvery = 3 };
        using (Pretrainer.Train(workspace.Files, workspace.Output("straight"), options))
        {
        }

        var stopped = workspace.Output("stopped");
        using (var cancellation = new CancellationTokenSource())
        {
            var stopAt = new InPlaceProgress<PretrainingProgress>(p =>
            {
                if (p.Stage == PretrainingStage.Training && p.Step == 10)
                {
                    cancellation.Cancel();
                }
            });
            Assert.ThrowsExactly<OperationCanceledException>(() => Pretrainer.Train(workspace.Files, stopped, options, stopAt, cancellation.Token));
        }

        Assert.IsFalse(File.Exists(Path.Combine(stopped, "model.safetensors")), "a stopped run exports nothing");
        int? resumedFrom;
        using (var resumed = Pretrainer.Train(workspace.Files, stopped, options with { Resume = true }))
        {
            resumedFrom = resumed.ResumedFromStep;
            Assert.AreEqual(20, resumed.Steps);
        }

        Assert.AreEqual(10, resumedFrom, "the checkpoint written on cancellation holds step 10");
        AssertSameTensors(Path.Combine(workspace.Output("straight"), "model.safetensors"), Path.Combine(stopped, "model.safetensors"));
        AssertSameTensors(Path.Combine(workspace.Output("straight"), "checkpoint", "optimizer.safetensors"), Path.Combine(stopped, "checkpoint", "optimizer.safetensors"));
    }

    [TestMethod]
    public void EpochsSetTheLengthAndValidationFilesReplaceTheHeldOutSequences()
    {
        using var workspace = new PretrainingWorkspace();
        var options = PretrainingWorkspace.Options(PretrainingKind.Decoder) with { Steps = null, Epochs = 2 };
        using var heldOut = Pretrainer.Train(workspace.Files, workspace.Output("held-out"), options);
        var validation = workspace.Write("validation.txt", Tokenization.Vocabulary.TrainingCorpus.Paragraphs(100, 3));
        using var separate = Pretrainer.Train(workspace.Files, workspace.Output("separate"), options with { ValidationFiles = [validation] });

        var sequences = heldOut.TrainingSequences!.Value;
        Assert.AreEqual(2 * (int)Math.Ceiling(sequences / 8.0), heldOut.Steps, "two passes of batches of 8");
        Assert.AreEqual(2, heldOut.Epochs);
        var all = separate.TrainingSequences!.Value;
        Assert.AreEqual(all - (all / 10), sequences, "every 10th sequence is held out");
        Assert.AreEqual(all / 10, heldOut.ValidationSequences);
        Assert.IsGreaterThan(0, separate.ValidationSequences);
        Assert.IsLessThan(all / 10, separate.ValidationSequences, "the validation file is shorter than the held-out text");
        StringAssert.Contains(File.ReadAllText(Path.Combine(separate.OutputFolder, "README.md")), "Validation files: `validation.txt`");
    }

    [TestMethod]
    public void ResumingAFinishedRunExportsTheSameModelAgain()
    {
        using var workspace = new PretrainingWorkspace();
        var output = workspace.Output("model");
        var options = PretrainingWorkspace.Options(PretrainingKind.Decoder) with { Steps = 4 };
        using (Pretrainer.Train(workspace.Files, output, options))
        {
        }

        var before = File.ReadAllBytes(Path.Combine(output, "model.safetensors"));
        using var again = Pretrainer.Train(workspace.Files, output, options with { Resume = true });
        Assert.AreEqual(4, again.Steps);
        CollectionAssert.AreEqual(before, File.ReadAllBytes(Path.Combine(output, "model.safetensors")));
    }

    [TestMethod]
    public void ACorruptCheckpointIsNamedOnResume()
    {
        using var workspace = new PretrainingWorkspace();
        var output = workspace.Output("model");
        var options = PretrainingWorkspace.Options(PretrainingKind.Encoder) with { Steps = 4 };
        using (Pretrainer.Train(workspace.Files, output, options))
        {
        }

        var checkpoint = Path.Combine(output, "checkpoint");
        var weights = Path.Combine(checkpoint, "model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        bytes[^5] ^= 0x40; // a bit of the last tensor's data: the file stays valid safetensors
        File.WriteAllBytes(weights, bytes);
        var corrupt = Assert.ThrowsExactly<CheckpointException>(() => Pretrainer.Train(workspace.Files, output, options with { Resume = true }));
        Assert.AreEqual(weights, corrupt.FilePath);
        StringAssert.Contains(corrupt.Message, "corrupt");

        var optimizer = Path.Combine(checkpoint, "optimizer.safetensors");
        File.WriteAllBytes(optimizer, File.ReadAllBytes(optimizer)[..100]);
        File.WriteAllBytes(weights, [.. bytes.Select((b, i) => i == bytes.Length - 5 ? (byte)(b ^ 0x40) : b)]);
        var truncated = Assert.ThrowsExactly<CheckpointException>(() => Pretrainer.Train(workspace.Files, output, options with { Resume = true }));
        Assert.AreEqual(optimizer, truncated.FilePath);

        File.WriteAllText(Path.Combine(checkpoint, "trainer_state.json"), "{\"format\": \"mlnet-transformers-pretraining\", \"ver");
        var state = Assert.ThrowsExactly<CheckpointException>(() => Pretrainer.Train(workspace.Files, output, options with { Resume = true }));
        StringAssert.Contains(state.Message, "trainer_state.json");
    }

    [TestMethod]
    public void ResumingChecksTheOptionsAndInputs()
    {
        using var workspace = new PretrainingWorkspace();
        var output = workspace.Output("model");
        var options = PretrainingWorkspace.Options(PretrainingKind.Encoder) with { Steps = 2 };

        var none = Assert.ThrowsExactly<InvalidOperationException>(() => Pretrainer.Train(workspace.Files, output, options with { Resume = true }));
        StringAssert.Contains(none.Message, "no checkpoint to resume");

        using (Pretrainer.Train(workspace.Files, output, options))
        {
        }

        var again = Assert.ThrowsExactly<InvalidOperationException>(() => Pretrainer.Train(workspace.Files, output, options));
        StringAssert.Contains(again.Message, "already holds a pretraining checkpoint (step 2 of 2)");

        var other = Assert.ThrowsExactly<InvalidOperationException>(() => Pretrainer.Train(workspace.Files, output, options with { Resume = true, BatchSize = 4 }));
        StringAssert.Contains(other.Message, "BatchSize is 4 now but was 8");

        var changed = workspace.Write("part-2.txt", "other text\n");
        var input = Assert.ThrowsExactly<InvalidOperationException>(() => Pretrainer.Train(workspace.Files, output, options with { Resume = true }));
        StringAssert.Contains(input.Message, $"Input file 2, '{changed}', is not the file the checkpoint was trained on");
    }

    [TestMethod]
    public void BadOptionsAreNamed()
    {
        using var workspace = new PretrainingWorkspace();
        var options = PretrainingWorkspace.Options(PretrainingKind.Encoder);
        var output = workspace.Output("model");

        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => Pretrainer.Train(workspace.Files, output, options with { Epochs = 2 })).Message, "not both");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Pretrainer.Train(workspace.Files, output, options with { BatchSize = 0 })).Message, "BatchSize 0 must be at least 1");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Pretrainer.Train(workspace.Files, output, options with { MaxLength = 64 })).Message, "longer than the 32 positions");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Pretrainer.Train(workspace.Files, output, options with { Size = PretrainingWorkspace.Micro with { Heads = 3 } })).Message, "divide the hidden size 32");
        Assert.ThrowsExactly<FileNotFoundException>(() => Pretrainer.Train([workspace.Output("missing.txt")], output, options));
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => Pretrainer.Train([workspace.Folder], output, options)).Message, "is a folder");

        // A decoder cannot continue an encoder, and an encoder needs a tokenizer with a mask token.
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => Pretrainer.Train(workspace.Files, output,
            options with { Kind = PretrainingKind.Decoder, From = TestPaths.Fixtures("hf-tiny-lm", "bert"), Size = ModelSize.Tiny })).Message, "Use Kind Encoder");
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => Pretrainer.Train(workspace.Files, output,
            options with { Tokenizer = TestPaths.Fixtures("hf-tiny-lm", "gpt2") })).Message, "lacks the mask");

        var empty = workspace.Write("empty.txt", "\n\n");
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => Pretrainer.Train([empty], workspace.Output("empty"),
            options with { Tokenizer = TestPaths.Fixtures("hf-tiny-lm", "bert") })).Message, "holds no text to train on");
    }

    [TestMethod]
    public void ContinuedPretrainingStartsFromTheCheckpointsWeights()
    {
        using var workspace = new PretrainingWorkspace();
        var from = TestPaths.Fixtures("hf-tiny-lm", "bert");
        var options = PretrainingWorkspace.Options(PretrainingKind.Encoder) with { From = from, Steps = 10, LearningRate = 1e-3, MaxLength = 32 };

        using var result = Pretrainer.Train(workspace.Files, workspace.Output("adapted"), options);

        Assert.IsNotNull(result.LoadReport);
        Assert.IsTrue(result.LoadReport.IsComplete, result.LoadReport.ToString());
        Assert.IsFalse(result.TrainedTokenizer);
        Assert.AreEqual(1600, result.Model.Config.VocabSize, "the checkpoint's own vocabulary");
        Assert.IsLessThan(result.InitialValidationLoss!.Value, result.ValidationLoss!.Value, "adapting to the new text lowers its loss");
        CollectionAssert.AreEqual(File.ReadAllBytes(Path.Combine(from, "vocab.txt")), File.ReadAllBytes(Path.Combine(result.OutputFolder, "vocab.txt")));
    }

    [TestMethod]
    public void StepsCheckpointsAndValidationLeaveNoTensorsBehind()
    {
        using var workspace = new PretrainingWorkspace();
        var options = PretrainingWorkspace.Options(PretrainingKind.Encoder) with { Steps = 1 };
        var run = 0;
        long LiveTensorsLeft(PretrainingOptions options)
        {
            var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            using (Pretrainer.Train(workspace.Files, workspace.Output($"model-{run++}"), options))
            {
            }

            return DisposeScopeManager.Statistics.ThreadTotalLiveCount - before;
        }

        LiveTensorsLeft(options);
        // Building a model leaves a few tensors of its initialisation behind; a longer run must leave no more than that.
        var oneStep = LiveTensorsLeft(options);
        Assert.AreEqual(oneStep, LiveTensorsLeft(options with { Steps = 8, CheckpointEvery = 2, EvaluateEvery = 2 }), "live tensors grew with steps, checkpoints or validation");
    }

    [TestMethod]
    [DataRow("tiny", 1_462_208L, 1_437_184L)]
    [DataRow("mini", 7_371_136L, 7_288_320L)]
    [DataRow("small", 35_727_104L, 35_430_400L)]
    public void PresetsHaveTheDocumentedParameterCounts(string name, long encoder, long decoder)
    {
        var size = ModelSize.FromName(name);
        foreach (var (fixture, expected) in new[] { ("bert", encoder), ("gpt2", decoder) })
        {
            var config = size.CreateConfig(TransformerTokenizer.FromFolder(TestPaths.Fixtures("hf-tiny-lm", fixture))) with { VocabSize = size.VocabularySize };
            using var model = TransformerModels.CreateForLanguageModeling(config);
            Assert.AreEqual(expected, model.parameters().Sum(p => p.numel()), $"{name} {fixture}");
        }
    }

    private static void AssertSameTensors(string expectedPath, string actualPath)
    {
        using var scope = NewDisposeScope();
        var expected = SafeTensorsFile.Read(expectedPath);
        var actual = SafeTensorsFile.Read(actualPath);
        CollectionAssert.AreEquivalent(expected.Keys.ToList(), actual.Keys.ToList());
        foreach (var (name, tensor) in expected)
        {
            Assert.IsTrue(tensor.shape.SequenceEqual(actual[name].shape) && tensor.eq(actual[name]).all().item<bool>(), $"{Path.GetFileName(actualPath)}: '{name}' differs");
        }
    }
}
