using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using MLNetTransformerExtensions.Export;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Onnx;
using MLNetTransformerExtensions.Tests.MLNet;
using MLNetTransformerExtensions.Tokenization;
using static MLNetTransformerExtensions.Tests.MLNet.TextClassificationTestData;

namespace MLNetTransformerExtensions.Tests.Export;

/// <summary>
/// Export of a fine-tuned model, not only of the untrained fixtures: the built-in MiniLM fine-tuned for one epoch on
/// the repository's datasets/sentiment, exported to ONNX, scores its held-out rows in ONNX Runtime with the same
/// predicted labels and logits within 1e-4 of TorchSharp on both padding sides; its int8 export stays within one
/// accuracy point of float32.
/// </summary>
[TestClass]
public sealed class FineTunedExportTests
{
    private const double Tolerance = 1e-4;

    /// <summary>Sentiment rows are short (under 40 word pieces); 64 keeps every one whole and training quick.</summary>
    private const int MaxLength = 64;

    [TestMethod]
    [TestCategory("Slow")]
    public void AFineTunedMiniLmScoresTheSameInOnnxRuntimeAndItsInt8ExportKeepsItsAccuracy()
    {
        var ml = new MLContext(seed: 1);
        var dataset = Path.Combine(TestPaths.RepositoryRoot(), "datasets", "sentiment");
        var train = Sentiment(ml, Path.Combine(dataset, "train.tsv")); // all 1,597 rows, one epoch
        var test = Sentiment(ml, Path.Combine(dataset, "test.tsv"));   // 399 held-out rows
        using var model = ml.BinaryClassification.Trainers.EncoderClassifier(new EncoderClassifierOptions
        {
            ModelPath = "builtin:all-MiniLM-L6-v2",
            NumberOfEpochs = 1,
            MaximumLength = MaxLength,
            BatchSize = 16,
        }).Fit(train);
        var work = TestPaths.NewTempDirectory();
        try
        {
            var fp32 = ml.Model.ExportTextClassifier(model, Path.Combine(work, "fp32"), new TextClassifierExportOptions { QuantizeInt8 = false });
            var int8 = ml.Model.ExportTextClassifier(model, Path.Combine(work, "int8"), new TextClassifierExportOptions { QuantizeInt8 = true });

            // The graph: logits within 1e-4 of TorchSharp's on every held-out row, padded on the right and on the left.
            var texts = ml.Data.CreateEnumerable<TransformerClassifierCatalogTests.BinaryReview>(test, reuseRowObject: false).Select(r => r.Text).ToArray();
            var network = ((HeadClassificationModel)Find(model).Classifier).Inner.Model;
            var tokenizer = TransformerTokenizer.FromFolder(fp32.Folder);
            using var session = new InferenceSession(fp32.OnnxPath);
            var largest = 0.0;
            foreach (var chunk in texts.Chunk(32))
            {
                foreach (var side in new[] { PaddingSide.Right, PaddingSide.Left })
                {
                    var batch = Batch(tokenizer.EncodeBatch(chunk, null, MaxLength, side), tokenizer.PadTokenId);
                    var torch = OnnxExportParityTests.TorchLogits(network, batch);
                    var onnx = OnnxExportParityTests.OnnxLogits(session, network.Config.Family, batch);
                    largest = Math.Max(largest, torch.Zip(onnx, (a, b) => Math.Abs(a - b)).Max());
                }
            }

            Assert.IsLessThanOrEqualTo(Tolerance, largest, $"largest |logit difference| {largest:E2}");

            // Through ML.NET: the ONNX package's estimator predicts every held-out label TorchSharp predicts.
            var expected = Predictions(ml, model.Transform(test));
            using var scorer = ml.Transforms.ScoreExportedTextClassifier(fp32.Folder).Fit(test);
            CollectionAssert.AreEqual(expected, Predictions(ml, scorer.Transform(test)), "predicted labels, float32 ONNX vs TorchSharp");

            // int8: within one accuracy point of float32 on the held-out rows, and a model that learned something.
            var accuracy = ml.BinaryClassification.Evaluate(model.Transform(test)).Accuracy;
            using var quantized = ml.Transforms.ScoreExportedTextClassifier(int8.Folder).Fit(test);
            var quantizedAccuracy = ml.BinaryClassification.Evaluate(quantized.Transform(test)).Accuracy;
            Console.WriteLine($"held-out accuracy: float32 {accuracy:P2}, int8 {quantizedAccuracy:P2}; largest float32 |logit difference| {largest:E2}; "
                + $"model.onnx {new FileInfo(fp32.OnnxPath).Length:N0} bytes, int8 {new FileInfo(int8.OnnxPath).Length:N0} bytes");
            Assert.IsGreaterThan(0.65, accuracy, "one epoch on the sentiment rows teaches MiniLM the task (75.2 % measured; chance is 50 %)");
            Assert.AreEqual(accuracy, quantizedAccuracy, 0.01, "int8 accuracy within one point of float32");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>datasets/sentiment's TSV (Label: positive or negative, Text) as binary rows.</summary>
    private static IDataView Sentiment(MLContext ml, string path) =>
        ml.Data.LoadFromEnumerable(File.ReadLines(path).Skip(1).Select(line => line.Split('\t', 2))
            .Select(f => new TransformerClassifierCatalogTests.BinaryReview { Label = f[0] == "positive", Text = f[1] }).ToArray());

    private static FixtureBatch Batch(EncodedBatch batch, int padId) =>
        new(batch.BatchSize, batch.SequenceLength, batch.InputIds, batch.AttentionMask, batch.TokenTypeIds, [], padId);

    private static bool[] Predictions(MLContext ml, IDataView scored) =>
        [.. ml.Data.CreateEnumerable<ExportCatalogTests.BinaryScores>(scored, reuseRowObject: false).Select(s => s.PredictedLabel)];
}
