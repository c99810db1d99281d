using Microsoft.ML;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Tests.MLNet;
using MLNetTransformerExtensions.Tests.Training.Pretraining;
using MLNetTransformerExtensions.Training;
using MLNetTransformerExtensions.Training.Pretraining;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Tests.Training;

/// <summary>
/// Training that diverges (a NaN or infinite loss, gradient norm or weight) stops with <see cref="TrainingDivergedException"/>
/// naming the step, the epoch and the learning rate, and suggesting a lower one; no model is returned or written.
/// </summary>
[TestClass]
public sealed class DivergenceTests
{
    // Decoupled weight decay multiplies every matrix by (1 - rate × 0.01) per step: at this rate by about -1e8, so the
    // weights overflow float32 within a few steps, whatever the data.
    private const double AbsurdLearningRate = 1e10;

    private static readonly FineTuningOptions Options = new() { Epochs = 3, BatchSize = 8, LearningRate = AbsurdLearningRate, MaxLength = 32, Seed = 3 };

    [TestMethod]
    public void ANaNWeightStopsFineTuningAtTheFirstStepNamingIt()
    {
        var data = SyntheticReviews.Binary(32, seed: 1);
        using var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "bert"), ["n", "p"], ClassifierKind.Encoder, 32, 1, out _);
        using (no_grad())
        {
            classifier.Model.parameters().First().fill_(float.NaN);
        }

        var error = Assert.ThrowsExactly<TrainingDivergedException>(() =>
            FineTuner.Train(classifier, new LabeledTexts(data.Texts, null, data.Labels), null, Options with { LearningRate = 1e-4 }));

        Assert.AreEqual(1, error.Step);
        Assert.AreEqual(1, error.Epoch);
        StringAssert.Contains(error.Message, "Training diverged at step 1 of 12 (epoch 1): the loss is NaN");
        StringAssert.Contains(error.Message, "learning rate of 1E-4");
        StringAssert.Contains(error.Message, "lower LearningRate (try 1E-5");
    }

    [TestMethod]
    [DataRow(1.0, DisplayName = "with gradient clipping")]
    [DataRow(0.0, DisplayName = "without gradient clipping")]
    public void AnAbsurdLearningRateStopsFineTuningWithTheStep(double maxGradNorm)
    {
        var data = SyntheticReviews.Binary(32, seed: 1);
        using var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "bert"), ["n", "p"], ClassifierKind.Encoder, 32, 1, out _);
        var steps = 0;
        var progress = new InPlaceProgress<TrainingProgress>(p => steps = p.Step);

        var error = Assert.ThrowsExactly<TrainingDivergedException>(() =>
            FineTuner.Train(classifier, new LabeledTexts(data.Texts, null, data.Labels), null, Options with { MaxGradNorm = maxGradNorm }, progress));

        Assert.AreEqual(steps + 1, error.Step, "the step that diverged is the one after the last reported");
        Assert.IsLessThanOrEqualTo(12, error.Step);
        StringAssert.Contains(error.Message, $"Training diverged at step {error.Step} of 12 (epoch {error.Epoch})");
        StringAssert.Contains(error.Message, "LearningRate");
    }

    [TestMethod]
    public void AnAbsurdLearningRateFailsFitAndReturnsNoModel()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TextClassificationTestData.SentimentRows(32));
        var estimator = ml.BinaryClassification.Trainers.EncoderClassifier(new EncoderClassifierOptions
        {
            ModelPath = TestPaths.Fixtures("hf-tiny", "bert"),
            NumberOfEpochs = 3,
            BatchSize = 8,
            LearningRate = AbsurdLearningRate,
            MaximumLength = 32,
        });

        var error = Assert.ThrowsExactly<TrainingDivergedException>(() => estimator.Fit(data));
        StringAssert.Contains(error.Message, "Train again with a lower LearningRate");
    }

    [TestMethod]
    [DataRow(PretrainingKind.Encoder)]
    [DataRow(PretrainingKind.Decoder)]
    public void AnAbsurdLearningRateStopsPretrainingAndExportsNothing(PretrainingKind kind)
    {
        using var workspace = new PretrainingWorkspace();
        var output = workspace.Output("model");

        var error = Assert.ThrowsExactly<TrainingDivergedException>(() =>
            Pretrainer.Train(workspace.Files, output, PretrainingWorkspace.Options(kind) with { LearningRate = AbsurdLearningRate }));

        StringAssert.Contains(error.Message, $"Training diverged at step {error.Step} of 20");
        Assert.IsFalse(File.Exists(Path.Combine(output, "model.safetensors")), "no model was exported");
        Assert.IsFalse(Directory.Exists(Path.Combine(output, "checkpoint")), "no checkpoint holds the diverged weights");
    }
}
