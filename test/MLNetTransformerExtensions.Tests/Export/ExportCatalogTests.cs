using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetTransformerExtensions.Export;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Onnx;
using MLNetTransformerExtensions.Tests.MLNet;
using MLNetTransformerExtensions.Tests.Training;
using MLNetTransformerExtensions.Training;
using static MLNetTransformerExtensions.Tests.MLNet.TextClassificationTestData;

namespace MLNetTransformerExtensions.Tests.Export;

/// <summary>
/// Export through ML.NET: a fitted pipeline exported to ONNX scores the same in ONNX Runtime (through our scorer, and
/// through plain ApplyOnnxModel), the scorer round-trips through a model file, and a HuggingFace export loads again.
/// </summary>
[TestClass]
public sealed class ExportCatalogTests
{
    private const double Tolerance = 1e-4;

    [TestMethod]
    public void AnExportedBinaryDecoderScoresTheSameInOnnxRuntimeAndThroughAModelFile()
    {
        var ml = new MLContext(seed: 1);
        var data = Reviews(ml, 24, seed: 71);
        using var model = ml.BinaryClassification.Trainers.DecoderClassifier(new DecoderClassifierOptions
        {
            ModelPath = TestPaths.Fixtures("hf-tiny", "gpt2"),
            NumberOfEpochs = 0,
            BatchSize = 8,
        }).Fit(data);
        var work = TestPaths.NewTempDirectory();
        try
        {
            var folder = Path.Combine(work, "onnx");
            var exported = ml.Model.ExportTextClassifier(model, folder);
            Assert.AreEqual(TextClassificationTask.Binary, exported.Task);
            CollectionAssert.AreEqual(new[] { "input_ids", "attention_mask" }, exported.OnnxInputNames.ToArray());

            var expected = Binary(ml, model.Transform(data));
            using var scorer = ml.Transforms.ScoreExportedTextClassifier(folder).Fit(data);
            var actual = Binary(ml, scorer.Transform(data));
            AssertSame(expected, actual);

            var zip = Path.Combine(work, "scorer.zip");
            ml.Model.Save(scorer, data.Schema, zip);
            Directory.Delete(folder, recursive: true); // the model file carries the graph and tokenizer
            using var loaded = (TextClassificationTransformer)new MLContext(seed: 5).Model.Load(zip, out _);
            Assert.AreEqual(OnnxTextClassificationModel.Format, loaded.ModelFormat);
            AssertSame(expected, Binary(ml, loaded.Transform(data)));
            var metrics = ml.BinaryClassification.Evaluate(loaded.Transform(data));
            Assert.IsGreaterThanOrEqualTo(0.0, metrics.Accuracy, "the evaluator reads the scorer's columns");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    public void AnExportedMulticlassEncoderKeepsItsClassNamesAndScores()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TopicRows(18));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.EncoderClassifier(new EncoderClassifierOptions
            {
                ModelPath = TestPaths.Fixtures("hf-tiny", "bert"),
                NumberOfEpochs = 0,
                BatchSize = 8,
            }));
        var model = pipeline.Fit(data);
        var work = TestPaths.NewTempDirectory();
        try
        {
            var folder = Path.Combine(work, "onnx");
            var exported = ml.Model.ExportTextClassifier(model, folder, new TextClassifierExportOptions { QuantizeInt8 = false });
            CollectionAssert.AreEqual(Topics, exported.ClassNames.ToArray());
            Assert.IsFalse(exported.IsQuantized);

            var expected = model.Transform(data).GetColumn<float[]>("Score").ToArray();
            using var scorer = ml.Transforms.ScoreExportedTextClassifier(folder).Fit(data);
            var scored = scorer.Transform(data);
            var actual = scored.GetColumn<float[]>("Score").ToArray();
            for (var row = 0; row < expected.Length; row++)
            {
                AssertClose(expected[row], actual[row], $"row {row}");
            }

            // The predicted key carries the class names, so MapKeyToValue restores them.
            var names = ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(scored).Transform(scored)
                .GetColumn<ReadOnlyMemory<char>>("PredictedLabel").Select(n => n.ToString()).ToArray();
            CollectionAssert.AreEqual(actual.Select(s => Topics[Array.IndexOf(s, s.Max())]).ToArray(), names);
            Assert.IsTrue(names.All(n => Topics.Contains(n)));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    public void AHuggingFaceExportLoadsAgainWithTheSameLogits()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TopicRows(12));
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.EncoderClassifier(new EncoderClassifierOptions
            {
                ModelPath = TestPaths.Fixtures("hf-tiny", "roberta"),
                NumberOfEpochs = 0,
            })).Fit(data);
        var work = TestPaths.NewTempDirectory();
        try
        {
            var folder = Path.Combine(work, "hf");
            var exported = ml.Model.ExportTextClassifier(model, folder, new TextClassifierExportOptions { Format = TextClassifierExportFormat.HuggingFace });
            Assert.AreEqual(TextClassifierExportFormat.HuggingFace, exported.Format);
            Assert.IsTrue(File.Exists(Path.Combine(folder, "model.safetensors")));
            var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!;
            Assert.AreEqual("RobertaForSequenceClassification", config["architectures"]![0]!.GetValue<string>());
            Assert.AreEqual("cooking", config["id2label"]!["1"]!.GetValue<string>());
            Assert.AreEqual(2, config["label2id"]!["tech"]!.GetValue<int>());

            var texts = TopicRows(12).Select(r => r.Text).ToArray();
            var original = ((HeadClassificationModel)Find(model).Classifier).Inner.PredictProbabilities(texts, null);
            using var reloaded = HeadClassifier.Load(folder);
            var again = reloaded.PredictProbabilities(texts, null);
            for (var row = 0; row < texts.Length; row++)
            {
                CollectionAssert.AreEqual(original[row], again[row], $"row {row}");
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    public void APromptClassifierExportsToHuggingFaceButNotToOnnx()
    {
        var ml = new MLContext(seed: 1);
        var data = Reviews(ml, 8, seed: 3);
        using var model = ml.BinaryClassification.Trainers.DecoderClassifier(new DecoderClassifierOptions
        {
            ModelPath = TestPaths.Fixtures("hf-tiny-lm", "gpt2"),
            Strategy = ClassificationStrategy.Prompt,
            NumberOfEpochs = 0,
        }).Fit(data);
        var work = TestPaths.NewTempDirectory();
        try
        {
            var error = Assert.ThrowsExactly<NotSupportedException>(() => ml.Model.ExportTextClassifier(model, Path.Combine(work, "onnx")));
            StringAssert.Contains(error.Message, "HuggingFace format only");
            var exported = ml.Model.ExportTextClassifier(model, Path.Combine(work, "hf"), new TextClassifierExportOptions { Format = TextClassifierExportFormat.HuggingFace });
            Assert.AreEqual(TextClassificationTask.Binary, exported.Task);
            using var reloaded = PromptClassifier.Load(exported.Folder);
            Assert.AreEqual(2, reloaded.Labels.Count);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    public void AskingForCudaWithoutItFailsWithWhatIsMissing()
    {
        var ml = new MLContext(seed: 1);
        WithExportedDistilBert(ml, Reviews(ml, 8, seed: 3), (model, exported) =>
        {
            var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Transforms.ScoreExportedTextClassifier(exported.Folder,
                new OnnxTextClassifierOptions { ExecutionProvider = OnnxExecutionProvider.Cuda }));
            StringAssert.Contains(error.Message, "Microsoft.ML.OnnxRuntime.Gpu.Linux");

            var notEmpty = Assert.ThrowsExactly<ArgumentException>(() => ml.Model.ExportTextClassifier(model, exported.Folder));
            StringAssert.Contains(notEmpty.Message, "not empty");
        });
    }

    [TestMethod]
    public void PlainApplyOnnxModelRunsTheExportedGraphWithOurTokenizationInFront()
    {
        var ml = new MLContext(seed: 1);
        var data = Reviews(ml, 10, seed: 9);
        WithExportedDistilBert(ml, data, (model, exported) =>
        {
            // Our tokenizer in front: every row padded to one fixed length, as ApplyOnnxModel wants fixed-size vectors.
            const int length = 32;
            var tokenizer = MLNetTransformerExtensions.Tokenization.TransformerTokenizer.FromFolder(exported.Folder);
            var texts = ml.Data.CreateEnumerable<TransformerClassifierCatalogTests.BinaryReview>(data, reuseRowObject: false).Select(r => r.Text).ToArray();
            var tokens = texts.Select(text =>
            {
                var batch = tokenizer.EncodeBatch([text], null, length);
                var row = new TokenRow { input_ids = new long[length], attention_mask = new long[length] };
                batch.InputIds.CopyTo(row.input_ids, 0);
                batch.AttentionMask.CopyTo(row.attention_mask, 0);
                Array.Fill(row.input_ids, tokenizer.PadTokenId, batch.SequenceLength, length - batch.SequenceLength);
                return row;
            });
            var schema = SchemaDefinition.Create(typeof(TokenRow));
            schema[nameof(TokenRow.input_ids)].ColumnType = new VectorDataViewType(NumberDataViewType.Int64, length);
            schema[nameof(TokenRow.attention_mask)].ColumnType = new VectorDataViewType(NumberDataViewType.Int64, length);
            var tokenized = ml.Data.LoadFromEnumerable(tokens, schema);

            var onnx = ml.Transforms.ApplyOnnxModel(["logits"], [.. exported.OnnxInputNames], exported.OnnxPath,
                shapeDictionary: new Dictionary<string, int[]> { ["input_ids"] = [1, length], ["attention_mask"] = [1, length] }, gpuDeviceId: null, fallbackToCpu: false, recursionLimit: 100);
            using var applied = onnx.Fit(tokenized);
            var logits = applied.Transform(tokenized).GetColumn<float[]>("logits").ToArray();

            var expected = Binary(ml, model.Transform(data));
            for (var row = 0; row < texts.Length; row++)
            {
                var probability = 1 / (1 + Math.Exp(logits[row][0] - logits[row][1]));
                Assert.AreEqual(expected[row].Probability, probability, Tolerance, $"row {row}");
            }
        });
    }

    /// <summary>Runs <paramref name="test"/> on an untrained binary DistilBERT classifier (the hf-tiny fixture) and its ONNX export.</summary>
    private static void WithExportedDistilBert(MLContext ml, IDataView data, Action<TextClassificationTransformer, ExportedTextClassifier> test)
    {
        using var model = ml.BinaryClassification.Trainers.EncoderClassifier(new EncoderClassifierOptions
        {
            ModelPath = TestPaths.Fixtures("hf-tiny", "distilbert"),
            NumberOfEpochs = 0,
        }).Fit(data);
        var work = TestPaths.NewTempDirectory();
        try
        {
            test(model, ml.Model.ExportTextClassifier(model, Path.Combine(work, "onnx")));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static IDataView Reviews(MLContext ml, int count, int seed)
    {
        var (texts, labels) = SyntheticReviews.Binary(count, seed);
        return ml.Data.LoadFromEnumerable(texts.Select((t, i) => new TransformerClassifierCatalogTests.BinaryReview { Text = t, Label = labels[i] == 1 }));
    }

    private static BinaryScores[] Binary(MLContext ml, IDataView scored) =>
        [.. ml.Data.CreateEnumerable<BinaryScores>(scored, reuseRowObject: false)];

    private static void AssertSame(BinaryScores[] expected, BinaryScores[] actual)
    {
        Assert.HasCount(expected.Length, actual);
        for (var row = 0; row < expected.Length; row++)
        {
            Assert.AreEqual(expected[row].Probability, actual[row].Probability, Tolerance, $"row {row}");
            Assert.AreEqual(expected[row].PredictedLabel, actual[row].PredictedLabel, $"row {row}");
        }
    }

    private static void AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.HasCount(expected.Length, actual, what);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.AreEqual(expected[i], actual[i], Tolerance, what);
        }
    }

#pragma warning disable IDE1006, SA1300 // the ONNX graph's input names
    public sealed class TokenRow
    {
        public long[] input_ids { get; set; } = [];

        public long[] attention_mask { get; set; } = [];
    }
#pragma warning restore IDE1006, SA1300

    public sealed class BinaryScores
    {
        public float Score { get; set; }

        public float Probability { get; set; }

        public bool PredictedLabel { get; set; }
    }
}
