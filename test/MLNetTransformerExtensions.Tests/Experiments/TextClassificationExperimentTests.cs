using Microsoft.Extensions.Time.Testing;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetTransformerExtensions.Experiments;
using MLNetTransformerExtensions.Tests.MLNet;

namespace MLNetTransformerExtensions.Tests.Experiments;

/// <summary>The experiment's promises: determinism under a trial limit, contained failures, a kept budget, a saveable best model.</summary>
[TestClass]
public sealed class TextClassificationExperimentTests
{
    private static string TinyBert => TestPaths.Fixtures("hf-tiny", "bert");

    private static (IDataView Train, IDataView Validation) Data(MLContext ml, int trainRows = 60) =>
        (ml.Data.LoadFromEnumerable(TextClassificationTestData.TopicRows(trainRows, seed: 3).Select(r => new TopicInput { Text = r.Text, Label = r.Label })),
         ml.Data.LoadFromEnumerable(TextClassificationTestData.TopicRows(30, seed: 4).Select(r => new TopicInput { Text = r.Text, Label = r.Label })));

    private static TransformerCandidate TinyEncoder() => new(TinyBert, TransformerCandidateKind.EncoderHead);

    [TestMethod]
    public void SameSeedAndTrialLimitGiveTheSameTrialsAndTheSameBestModel()
    {
        (List<TrialResult> Trials, float[][] Scores) Run()
        {
            var ml = new MLContext(seed: 1);
            var (train, validation) = Data(ml);
            var result = ml.CreateTextClassificationExperiment(new TextClassificationExperimentSettings
            {
                Candidates = [TinyEncoder()],
                MaxTrials = 3,
                Seed = 5,
            }).Execute(train, validation);
            return ([.. result.Trials], Scores(result.BestModel.Transform(validation)));
        }

        var first = Run();
        var second = Run();
        Assert.HasCount(3, first.Trials);
        Assert.AreEqual(TrialStatus.Completed, first.Trials[0].Status, first.Trials[0].Error);
        Assert.IsFalse(first.Trials.Any(t => t.Status == TrialStatus.Failed), string.Join("; ", first.Trials.Select(t => t.Error)));
        StringAssert.StartsWith(first.Trials[0].Candidate, "encoder-head ");
        Assert.AreEqual(1e-4, first.Trials[0].Hyperparameters["learning_rate"], "index 0 is the kind's default");
        Assert.AreNotEqual(first.Trials[1].Hyperparameters.ToString(), first.Trials[2].Hyperparameters.ToString(), "later configurations are drawn, not repeated");
        for (var i = 0; i < first.Trials.Count; i++)
        {
            Assert.AreEqual(first.Trials[i].Candidate, second.Trials[i].Candidate);
            Assert.AreEqual(first.Trials[i].Hyperparameters.ToString(), second.Trials[i].Hyperparameters.ToString());
            Assert.AreEqual(first.Trials[i].Status, second.Trials[i].Status);
            Assert.AreEqual(first.Trials[i].Metric, second.Trials[i].Metric, $"trial {i + 1}");
        }

        Assert.HasCount(first.Scores.Length, second.Scores);
        for (var row = 0; row < first.Scores.Length; row++)
        {
            CollectionAssert.AreEqual(first.Scores[row], second.Scores[row], $"row {row}");
        }
    }

    [TestMethod]
    public void AFailingTrialIsRecordedAndTheExperimentGoesOnReportingEveryStep()
    {
        var ml = new MLContext(seed: 1);
        var (train, validation) = Data(ml);
        var events = new List<TrialResult>();
        var result = ml.CreateTextClassificationExperiment(new TextClassificationExperimentSettings
        {
            Candidates = [new ThrowingCandidate(), new SdcaMaximumEntropyCandidate()],
            MaxTrials = 2,
            Progress = new SynchronousProgress<TrialResult>(events.Add),
        }).Execute(train, validation);

        Assert.HasCount(2, result.Trials);
        Assert.AreEqual(TrialStatus.Failed, result.Trials[0].Status);
        StringAssert.Contains(result.Trials[0].Error, "the candidate broke on purpose");
        Assert.IsNull(result.Trials[0].Metric);
        Assert.AreEqual(TrialStatus.Completed, result.Trials[1].Status);
        Assert.AreSame(result.Trials[1], result.BestTrial);
        Assert.IsGreaterThan(0.9, result.BestTrial.Metric!.Value, "SDCA separates the topics");

        CollectionAssert.AreEqual(
            new[] { (1, TrialStatus.Running), (1, TrialStatus.Failed), (2, TrialStatus.Running), (2, TrialStatus.Completed) },
            events.Select(e => (e.TrialNumber, e.Status)).ToArray());
        var completed = events[3];
        Assert.AreEqual("SdcaMaximumEntropy", completed.Candidate);
        Assert.IsGreaterThan(0L, completed.PeakMemoryBytes);
        Assert.IsGreaterThan(0L, completed.ModelSizeBytes!.Value);
        Assert.IsNotNull(completed.Metrics);
        Assert.AreEqual(completed.Metric, completed.Metrics.MicroAccuracy);
    }

    [TestMethod]
    public void WhenTheBudgetRunsOutTheTrialInFlightIsCancelledAndTheBestFinishedTrialReturned()
    {
        var ml = new MLContext(seed: 1);
        var (train, validation) = Data(ml);
        var clock = new FakeTimeProvider();
        var result = ml.CreateTextClassificationExperiment(new TextClassificationExperimentSettings
        {
            Candidates = [new SdcaMaximumEntropyCandidate(), TinyEncoder()],
            MaxExperimentTime = TimeSpan.FromHours(1),
            TimeProvider = clock,
            // The clock jumps past the budget as soon as the transformer trial starts, so it is cancelled in flight.
            Progress = new SynchronousProgress<TrialResult>(t =>
            {
                if (t.Status == TrialStatus.Running && t.Candidate.StartsWith("encoder-head", StringComparison.Ordinal))
                {
                    clock.Advance(TimeSpan.FromHours(2));
                }
            }),
        }).Execute(train, validation);

        Assert.HasCount(2, result.Trials, "nothing starts after the budget ran out");
        Assert.AreEqual(TrialStatus.Completed, result.Trials[0].Status);
        Assert.AreEqual(TrialStatus.Cancelled, result.Trials[1].Status);
        Assert.AreEqual("the time budget ran out", result.Trials[1].Error);
        Assert.AreEqual("SdcaMaximumEntropy", result.BestTrial.Candidate);
        Assert.IsTrue(result.StoppedByBudgetOrCancellation);
    }

    [TestMethod]
    public void ATrialWhosePaceCannotFinishInTheTimeLeftIsStoppedEarly()
    {
        var ml = new MLContext(seed: 1);
        var (train, validation) = Data(ml, trainRows: 300);
        var clock = new FakeTimeProvider();
        var result = ml.CreateTextClassificationExperiment(new TextClassificationExperimentSettings
        {
            // Every report "takes" five minutes on the fake clock: 3 epochs of 10 steps cannot fit in the hour.
            Candidates = [new SlowCandidate(TinyEncoder(), clock, TimeSpan.FromMinutes(5))],
            MaxExperimentTime = TimeSpan.FromHours(1),
            MaxTrials = 1,
            TimeProvider = clock,
        });
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => result.Execute(train, validation));
        StringAssert.Contains(e.Message, "at its pace it needs about");
    }

    [TestMethod]
    public void CancellingTheTokenStopsTheExperimentAndKeepsTheBestFinishedTrial()
    {
        var ml = new MLContext(seed: 1);
        var (train, validation) = Data(ml);
        using var cancellation = new CancellationTokenSource();
        var result = ml.CreateTextClassificationExperiment(new TextClassificationExperimentSettings
        {
            Candidates = [new SdcaMaximumEntropyCandidate(), new LbfgsMaximumEntropyCandidate(), TinyEncoder()],
            CancellationToken = cancellation.Token,
            Progress = new SynchronousProgress<TrialResult>(t =>
            {
                if (t.TrialNumber == 2 && t.Status == TrialStatus.Running)
                {
                    cancellation.Cancel();
                }
            }),
        }).Execute(train, validation);

        Assert.HasCount(2, result.Trials);
        Assert.AreEqual(TrialStatus.Cancelled, result.Trials[1].Status);
        Assert.AreEqual("the experiment was cancelled", result.Trials[1].Error);
        Assert.AreEqual(1, result.BestTrial.TrialNumber);
    }

    [TestMethod]
    [DataRow("transformer, validation set")]
    [DataRow("classic, cross-validated")]
    public void TheBestModelIsAnOrdinaryPipelineThatSavesAndLoads(string setup)
    {
        var ml = new MLContext(seed: 1);
        var (train, validation) = Data(ml);
        var transformer = setup.StartsWith("transformer", StringComparison.Ordinal);
        var result = ml.CreateTextClassificationExperiment(new TextClassificationExperimentSettings
        {
            Candidates = transformer ? [TinyEncoder()] : [new LbfgsMaximumEntropyCandidate()],
            MaxTrials = 1,
        }).Execute(train, transformer ? validation : null);

        var path = Path.Combine(TestPaths.NewTempDirectory(), "best.zip");
        try
        {
            ml.Model.Save(result.BestModel, train.Schema, path);
            var fresh = new MLContext(seed: 2);
            var loaded = fresh.Model.Load(path, out _);
            var before = Scores(result.BestModel.Transform(validation));
            var after = Scores(loaded.Transform(validation));
            for (var row = 0; row < before.Length; row++)
            {
                CollectionAssert.AreEqual(before[row], after[row], $"row {row}");
            }

            var predicted = fresh.Data.CreateEnumerable<TopicPrediction>(loaded.Transform(validation), reuseRowObject: false).Select(p => p.PredictedLabel).ToList();
            CollectionAssert.IsSubsetOf(predicted.Distinct().ToList(), TextClassificationTestData.Topics, "PredictedLabel is mapped back to the label's values");
            CollectionAssert.AreEqual(TextClassificationTestData.Topics.Order(StringComparer.Ordinal).ToList(), result.ClassNames.ToList());
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }

    [TestMethod]
    public void ATokenCancelsTheClassicTrainersOfItsContext()
    {
        var ml = new MLContext(seed: 1);
        var (train, _) = Data(ml);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.Text.FeaturizeText("Features", "Text"))
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy());
        using var cancellation = new CancellationTokenSource();
        using var registration = MLNetTransformerExtensions.MLNet.Internal.ContextCancellation.CancelOn(ml, cancellation.Token);
        Task.Run(cancellation.Cancel).Wait(); // from another thread, as the budget's timer does

        var e = Assert.Throws<Exception>(() => pipeline.Fit(train));
        StringAssert.Contains(e.ToString(), "cancel", StringComparison.OrdinalIgnoreCase);
    }

    [TestMethod]
    public void CandidatesFollowTheModel()
    {
        static string[] Names(string model) => [.. ExperimentCandidates.ForModel(model).Select(c => c.Name.Split(' ')[0])];

        CollectionAssert.AreEqual(new[] { "encoder-head" }, Names(TestPaths.Fixtures("hf-tiny", "bert")), "a classifier checkpoint has no masked-LM head");
        CollectionAssert.AreEqual(new[] { "encoder-head", "encoder-prompt" }, Names(TestPaths.Fixtures("hf-tiny-lm", "bert")));
        CollectionAssert.AreEqual(new[] { "decoder-head", "decoder-prompt" }, Names(TestPaths.Fixtures("hf-tiny", "gpt2")));
        CollectionAssert.AreEqual(new[] { "seq2seq-head", "seq2seq-prompt" }, Names(TestPaths.Fixtures("hf-tiny-seq2seq", "bart-lm")));
        CollectionAssert.AreEqual(new[] { "seq2seq-prompt" }, Names(TestPaths.Fixtures("hf-tiny-seq2seq", "t5")), "T5 has no classification head");
    }

    [TestMethod]
    [DataRow("builtin:no-such-model", "is not a built-in model")]
    [DataRow("./no/such/folder", "is not an existing model folder")]
    [DataRow("owner/name/extra/", "is not an existing model folder")]
    [DataRow("bad id with spaces", "nor a HuggingFace hub id")]
    public void ABadModelNameIsRefusedByName(string model, string message)
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => ExperimentCandidates.CheckModelName(model));
        StringAssert.Contains(e.Message, model);
        StringAssert.Contains(e.Message, message);
    }

    [TestMethod]
    public void TheMaximumLengthComesFromTheTokenLengths()
    {
        var candidate = TinyEncoder();
        var texts = Enumerable.Range(0, 100).Select(i => string.Join(' ', Enumerable.Repeat("the", i < 95 ? 10 : 60))).ToList();
        candidate.Prepare(new ExperimentData(texts.Count, ["a", "b"], texts, null), CancellationToken.None);
        // 95 % of rows hold 10 words + [CLS] and [SEP] = 12 tokens: rounded up to 16, not the outliers' 62.
        Assert.AreEqual(16, candidate.MaximumLength);
        Assert.AreEqual(16, candidate.Sample(new Random(1), 0)["max_length"]);
    }

    [TestMethod]
    public void AreaUnderTheRocCurveIsTheShareOfCorrectlyOrderedPairs()
    {
        var ml = new MLContext(seed: 1);
        var rows = new[] { ("pos", 0.9f), ("neg", 0.8f), ("pos", 0.7f), ("neg", 0.1f) }
            .Select(r => new ScoredRow { Class = r.Item1, Score = [1 - r.Item2, r.Item2] });
        var view = ml.Transforms.Conversion.MapValueToKey("Label", "Class", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
        // Positives 0.9 and 0.7 against negatives 0.8 and 0.1: 3 of 4 pairs in order.
        Assert.AreEqual(0.75, ExperimentMetrics.AreaUnderRocCurve(view, "Label"), 1e-12);
    }

    private static float[][] Scores(IDataView scored)
    {
        var column = scored.Schema["Score"];
        var scores = new List<float[]>();
        using var cursor = scored.GetRowCursor([column]);
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        VBuffer<float> value = default;
        while (cursor.MoveNext())
        {
            getter(ref value);
            scores.Add(value.DenseValues().ToArray());
        }

        return [.. scores];
    }

    public sealed class ScoredRow
    {
        public string Class { get; set; } = "";

        [VectorType(2)]
        public float[] Score { get; set; } = [];
    }

    /// <summary>A candidate whose trainer cannot be built, as a broken checkpoint or a bad setting would.</summary>
    private sealed class ThrowingCandidate : ExperimentCandidate
    {
        public override string Name => "throwing";

        public override bool IsExpensive => false;

        public override double EstimatedSecondsPerRow => 1e-3;

        public override Hyperparameters Sample(Random random, int index) => Hyperparameters.Empty;

        public override IEstimator<ITransformer> CreateTrainer(MLContext mlContext, TrialSetup setup) =>
            throw new InvalidDataException("the candidate broke on purpose");
    }

    /// <summary>A candidate whose training steps advance a fake clock, as a slow machine would.</summary>
    private sealed class SlowCandidate(TransformerCandidate inner, FakeTimeProvider clock, TimeSpan perStep) : ExperimentCandidate
    {
        public override string Name => "slow " + inner.Name;

        public override bool IsExpensive => true;

        public override double EstimatedSecondsPerRow => 0;

        public override void Prepare(ExperimentData data, CancellationToken cancellationToken) => inner.Prepare(data, cancellationToken);

        public override Hyperparameters Sample(Random random, int index) => inner.Sample(random, index);

        public override double Epochs(Hyperparameters hyperparameters) => inner.Epochs(hyperparameters);

        public override IEstimator<ITransformer> CreateTrainer(MLContext mlContext, TrialSetup setup) => inner.CreateTrainer(mlContext, new TrialSetup
        {
            LabelKeyColumnName = setup.LabelKeyColumnName,
            TextColumnName = setup.TextColumnName,
            SecondTextColumnName = setup.SecondTextColumnName,
            PredictedLabelKeyColumnName = setup.PredictedLabelKeyColumnName,
            Hyperparameters = setup.Hyperparameters,
            Seed = setup.Seed,
            ValidationSet = setup.ValidationSet,
            CancellationToken = setup.CancellationToken,
            TrainingProgress = new SynchronousProgress<MLNetTransformerExtensions.Training.TrainingProgress>(p =>
            {
                clock.Advance(perStep);
                setup.TrainingProgress?.Report(p);
            }),
        });
    }

    /// <summary>Reports on the caller's thread (<see cref="Progress{T}"/> would post to the thread pool).</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
