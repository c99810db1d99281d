using System.Text.Json;
using Microsoft.ML;
using MLNetTransformerExtensions.Benchmarks;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Tests.Cli;
using MLNetTransformerExtensions.Tests.Training;
using MLNetTransformerExtensions.Tokenization;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Tests.Benchmarks;

/// <summary>
/// The pipeline benchmark on a few dozen rows: every phase runs, its counts follow from the data and the settings, its
/// shares are shares, and the JSON carries them. Nothing is timed against a threshold: benchmarks are not timed tests.
/// </summary>
[TestClass]
public sealed class PipelineBenchmarkTests
{
    private static readonly string[] Names = ["negative", "neutral", "positive"];

    public sealed class Row
    {
        public string Text { get; set; } = string.Empty;

        public string Label { get; set; } = string.Empty;
    }

    private static IDataView View(MLContext ml, (List<string> Texts, List<int> Labels) data) =>
        ml.Data.LoadFromEnumerable(data.Texts.Select((t, i) => new Row { Text = t, Label = Names[data.Labels[i]] }).ToList());

    private static void WriteTsv(string path, (List<string> Texts, List<int> Labels) data) =>
        File.WriteAllLines(path, ["Label\tText", .. data.Texts.Select((t, i) => $"{Names[data.Labels[i]]}\t{t}")]);

    private static void AssertPhaseIsConsistent(PipelinePhase phase, long rows, long? batches)
    {
        Assert.AreEqual(rows, phase.Rows, phase.Name);
        if (batches is null)
        {
            Assert.IsTrue(phase.Batches > 0, $"{phase.Name}: the network calls were counted");
        }
        else
        {
            Assert.AreEqual(batches, phase.Batches, $"{phase.Name}: one network call per batch");
        }

        Assert.IsTrue(phase.Seconds > 0 && phase.RowsPerSecond > 0, phase.Name);
        Assert.IsTrue(phase.Tokens > 0 && phase.Tokens <= phase.PaddedTokens, $"{phase.Name}: {phase.Tokens} tokens in {phase.PaddedTokens} positions");
        Assert.IsTrue(phase.ForwardSeconds > 0, $"{phase.Name}: the forward pass was timed");
        foreach (var stage in new[] { phase.ReadRowsSeconds, phase.SetupSeconds, phase.TokenizeSeconds, phase.BatchSeconds, phase.BackwardSeconds, phase.OptimizerStepSeconds, phase.OtherSeconds })
        {
            Assert.IsTrue(stage >= 0, phase.Name);
        }

        // The stage timers cover disjoint stretches of the phase, so together they fit in its wall time.
        var covered = phase.ModelSeconds + phase.ReadRowsSeconds + phase.SetupSeconds + phase.TokenizeSeconds + phase.BatchSeconds;
        Assert.IsTrue(covered <= phase.Seconds * 1.001, $"{phase.Name}: stages {covered} s within {phase.Seconds} s");
        Assert.IsTrue(phase.OutsideShare is >= 0 and <= 1, phase.Name);
        Assert.AreEqual(phase.Seconds - phase.ModelSeconds, phase.OutsideSeconds, 1e-9, phase.Name);
        Assert.IsTrue(phase.PaddingShare is >= 0 and < 1, phase.Name);
        Assert.IsTrue(phase.PeakResidentMegabytes >= phase.ResidentMegabytes && phase.ResidentMegabytes > 0, phase.Name);
    }

    [TestMethod]
    public void DecoderPipelineCountsEveryBatchOfEveryPhase()
    {
        var ml = new MLContext(seed: 1);
        var train = View(ml, SyntheticReviews.ThreeClasses(40, seed: 5));
        var test = View(ml, SyntheticReviews.ThreeClasses(21, seed: 6));
        var result = PipelineBenchmark.Run(train, test, new PipelineBenchmarkOptions
        {
            ModelPath = TestPaths.Fixtures("hf-tiny", "gpt2"),
            Epochs = 2,
            BatchSize = 16,
            MaxLength = 32,
            StreamRows = 70,
            SampleEvery = 20,
        });

        Assert.AreEqual(ClassifierKind.Decoder, result.Kind);
        Assert.AreEqual(InferencePrecision.Float32, result.Precision, "fp32 unless asked otherwise");
        Assert.AreEqual((40, 21), (result.TrainRows, result.TestRows));
        AssertPhaseIsConsistent(result.Training, rows: 80, batches: 2 * 3);
        AssertPhaseIsConsistent(result.Scoring, rows: 21, batches: 2);
        AssertPhaseIsConsistent(result.Streaming, rows: 70, batches: 5);
        Assert.IsTrue(result.Training.BackwardSeconds > 0 && result.Training.OptimizerStepSeconds > 0 && result.Training.SetupSeconds > 0);
        Assert.AreEqual(0, result.Scoring.BackwardSeconds + result.Streaming.BackwardSeconds, "scoring does not train");
        Assert.IsTrue(result.Accuracy is >= 0 and <= 1);
        Assert.IsTrue(result.Parameters > 0);

        // Samples every 20 rows and one at the end.
        CollectionAssert.AreEqual(new long[] { 20, 40, 60, 70 }, result.StreamingMemory.Select(s => s.Rows).ToArray());
        Assert.IsTrue(result.StreamingMemory.All(s => s.ResidentMegabytes > 0 && s.ManagedMegabytes > 0));
        Assert.IsTrue(double.IsFinite(result.StreamingSlopeMegabytesPer10kRows));
    }

    [TestMethod]
    public void PromptStrategyIsTimedStageByStageToo()
    {
        var ml = new MLContext(seed: 1);
        var train = View(ml, SyntheticReviews.ThreeClasses(32, seed: 5));
        var test = View(ml, SyntheticReviews.ThreeClasses(12, seed: 6));
        var result = PipelineBenchmark.Run(train, test, new PipelineBenchmarkOptions
        {
            ModelPath = TestPaths.Fixtures("hf-tiny-lm", "gpt2"),
            Strategy = ClassificationStrategy.Prompt,
            BatchSize = 16,
            MaxLength = 32,
            StreamRows = 30,
            SampleEvery = 10,
        });

        AssertPhaseIsConsistent(result.Training, rows: 32, batches: 2);
        AssertPhaseIsConsistent(result.Scoring, rows: 12, batches: null);
        AssertPhaseIsConsistent(result.Streaming, rows: 30, batches: null);
        foreach (var phase in new[] { result.Scoring, result.Streaming })
        {
            Assert.IsTrue(phase.TokenizeSeconds > 0 && phase.BatchSeconds > 0, $"{phase.Name}: the prompt path's tokenizing and padding are timed");
        }

        Assert.IsTrue(result.Training.BackwardSeconds > 0 && result.Training.OptimizerStepSeconds > 0);
    }

    [TestMethod]
    public void TimersStayOffOutsideABenchmark()
    {
        PipelineTimings.Reset();
        using (var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "bert"), ["a", "b"], ClassifierKind.Encoder, 16, seed: 1, out _))
        {
            classifier.PredictProbabilities(["one text", "and another"], null);
        }

        var snapshot = PipelineTimings.Snapshot();
        Assert.IsTrue(snapshot.StageSeconds.All(s => s == 0));
        Assert.AreEqual((0L, 0L, 0L), (snapshot.Batches, snapshot.Tokens, snapshot.PaddedTokens));
    }

    [TestMethod]
    public void CliWritesTheTableAndAJsonFileWithEveryPhase()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            WriteTsv(Path.Combine(work, "train.tsv"), SyntheticReviews.ThreeClasses(36, seed: 7));
            WriteTsv(Path.Combine(work, "test.tsv"), SyntheticReviews.ThreeClasses(24, seed: 8));
            var model = TestPaths.Fixtures("hf-tiny", "bert");
            var (exit, stdout, stderr) = CliRunner.Run(
                $"bench pipeline --data train.tsv --test test.tsv --model \"{model}\" --batch-size 8 --max-length 32 --stream-rows 50 --sample-every 10 --threads 1 --precision bf16 --json out/pipeline.json", work);
            Assert.AreEqual(0, exit, stderr + stdout);
            StringAssert.Contains(stdout, "outside the model", "the table goes to stdout");
            StringAssert.Contains(stdout, "streaming memory over 50 rows");

            using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(work, "out", "pipeline.json")));
            var json = document.RootElement;
            Assert.AreEqual("pipeline", json.GetProperty("benchmark").GetString());
            Assert.AreEqual("bf16", json.GetProperty("precision").GetString(), "the fitted model scored in the precision asked for");
            StringAssert.Contains(stdout, "bf16 scoring");
            Assert.AreEqual((36, 24, 1, 8, 1), (json.GetProperty("train_rows").GetInt32(), json.GetProperty("test_rows").GetInt32(),
                json.GetProperty("epochs").GetInt32(), json.GetProperty("batch_size").GetInt32(), json.GetProperty("threads").GetInt32()));
            foreach (var (name, rows, batches) in new[] { ("training", 36, 5), ("scoring", 24, 3), ("streaming", 50, 7) })
            {
                var phase = json.GetProperty(name);
                Assert.AreEqual(rows, phase.GetProperty("rows").GetInt64(), name);
                Assert.AreEqual(batches, phase.GetProperty("batches").GetInt64(), name);
                Assert.IsTrue(phase.GetProperty("outside_share").GetDouble() is >= 0 and <= 1, name);
                Assert.IsTrue(phase.GetProperty("padding_share").GetDouble() is >= 0 and <= 1, name);
                Assert.IsTrue(phase.GetProperty("rows_per_s").GetDouble() > 0, name);
                Assert.IsTrue(phase.GetProperty("peak_rss_mb").GetDouble() > 0, name);
                var stages = phase.GetProperty("stages_seconds");
                foreach (var stage in new[] { "read_rows", "setup", "tokenize", "batch", "forward", "backward", "optimizer_step", "other" })
                {
                    Assert.IsTrue(stages.GetProperty(stage).GetDouble() >= 0, $"{name}.{stage}");
                }
            }

            Assert.IsTrue(json.GetProperty("scoring").GetProperty("accuracy").GetDouble() is >= 0 and <= 1);
            var curve = json.GetProperty("streaming").GetProperty("memory_curve");
            CollectionAssert.AreEqual(new long[] { 10, 20, 30, 40, 50 }, curve.EnumerateArray().Select(c => c.GetProperty("rows").GetInt64()).ToArray());
            Assert.IsTrue(json.GetProperty("peak_rss_mb").GetDouble() >= json.GetProperty("streaming").GetProperty("rss_max_mb").GetDouble());
            Assert.IsTrue(json.TryGetProperty("libtorch_version", out _));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    public void NasBertSizePresetTrainsItsVocabularyOnTheTrainingTexts()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var train = SyntheticReviews.ThreeClasses(30, seed: 9);
            var vocabulary = PipelineBenchmark.CreatePresetFolder("nasbert-size", train.Texts, work);
            var tokenizer = TransformerTokenizer.FromFolder(work);
            Assert.AreEqual(vocabulary, tokenizer.VocabularySize);
            Assert.IsTrue(vocabulary < 16384, "a few sentences give a small vocabulary");
            Assert.AreEqual(512, tokenizer.ModelMaxLength);

            // The embedding table keeps the preset's 16384 rows, so the parameter count is the preset's.
            var config = MLNetTransformerExtensions.Modeling.TransformerConfig.FromFolder(work);
            Assert.AreEqual((MLNetTransformerExtensions.Modeling.ModelFamily.Bert, 16384, 192, 4, 3, 384, 512),
                (config.Family, config.VocabSize, config.HiddenSize, config.NumLayers, config.NumHeads, config.IntermediateSize, config.MaxPositions));
            Assert.IsFalse(File.Exists(Path.Combine(work, "vocabulary-input.txt")), "the texts written for training are removed");
            Assert.ThrowsExactly<ArgumentException>(() => PipelineBenchmark.CreatePresetFolder("bert-large", train.Texts, work));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
