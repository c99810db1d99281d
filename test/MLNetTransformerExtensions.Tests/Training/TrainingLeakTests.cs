using MLNetTransformerExtensions.Training;
using TorchSharp;

namespace MLNetTransformerExtensions.Tests.Training;

/// <summary>
/// Every training loop frees its steps' tensors: a run of many steps leaves exactly as many live tensors behind as a
/// run of one (none, once the classifier is disposed), so nothing is left for the garbage collector to find. Live
/// tensors are TorchSharp's per-thread count of tensors made and not disposed, so a tensor the finalizer frees later
/// still counts as left behind.
/// </summary>
[TestClass]
public sealed class TrainingLeakTests
{
    private static readonly FineTuningOptions Options = new() { BatchSize = 4, LearningRate = 1e-3, WarmupRatio = 0.1, MaxLength = 24, Seed = 2 };

    private static long Live => DisposeScopeManager.Statistics.ThreadTotalLiveCount;

    [TestMethod]
    [DataRow("hf-tiny", "bert", ClassifierKind.Encoder, false)]
    [DataRow("hf-tiny", "gpt2", ClassifierKind.Decoder, false)]
    [DataRow("hf-tiny-seq2seq", "bart", ClassifierKind.EncoderDecoder, false)]
    [DataRow("hf-tiny-lm", "bert", ClassifierKind.Encoder, true)]
    [DataRow("hf-tiny-seq2seq", "t5", ClassifierKind.EncoderDecoder, true)]
    public void FineTuningLeavesNoTensorsBehind(string fixtures, string family, ClassifierKind kind, bool prompt)
    {
        var train = SyntheticReviews.Binary(16, seed: 1);
        var validation = SyntheticReviews.Binary(8, seed: 2);
        (long DuringTraining, long AfterDispose) Run(FineTuningOptions options)
        {
            var before = Live;
            long during;
            using (var classifier = Create(TestPaths.Fixtures(fixtures, family), kind, prompt))
            {
                var built = Live;
                Train(classifier, new LabeledTexts(train.Texts, null, train.Labels), new LabeledTexts(validation.Texts, null, validation.Labels), options);
                during = Live - built;
            }

            return (during, Live - before);
        }

        var oneStep = Run(Options with { Epochs = 1, BatchSize = 16 });
        // Several epochs of several steps, with clipping, accumulation, validation and early stopping's snapshot.
        var manySteps = Run(Options with { Epochs = 3, GradientAccumulationSteps = 2, EarlyStoppingPatience = 5 });
        Assert.AreEqual(oneStep, manySteps, "(left by training, left after disposing) grew with the steps");
        Assert.AreEqual(0, manySteps.AfterDispose, "a disposed classifier leaves no tensor behind");
    }

    [TestMethod]
    public void SetFitBodyTrainingLeavesNoTensorsBehind()
    {
        var train = SyntheticReviews.Binary(12, seed: 3);
        long Run(int iterations)
        {
            var before = Live;
            using (var encoder = SentenceEncoder.FromFolder(TestPaths.Fixtures("hf-tiny", "bert"), maxLength: 24))
            {
                ContrastiveTuner.Train(encoder, new LabeledTexts(train.Texts, null, train.Labels), iterations, null, Options with { Epochs = 1 }, null, default);
            }

            return Live - before;
        }

        Assert.AreEqual(0, Run(1), "one round of pairs");
        Assert.AreEqual(0, Run(4), "four rounds of pairs");
    }

    private static IDisposable Create(string folder, ClassifierKind kind, bool prompt) => prompt
        ? PromptClassifier.FromPretrained(folder, ["negative", "positive"], kind, null, Options.MaxLength, Options.Seed, out _)
        : HeadClassifier.FromPretrained(folder, ["negative", "positive"], kind, Options.MaxLength, Options.Seed, out _);

    private static void Train(IDisposable classifier, LabeledTexts train, LabeledTexts validation, FineTuningOptions options)
    {
        if (classifier is PromptClassifier prompt)
        {
            FineTuner.Train(prompt, train, validation, options);
        }
        else
        {
            FineTuner.Train((HeadClassifier)classifier, train, validation, options);
        }
    }
}
