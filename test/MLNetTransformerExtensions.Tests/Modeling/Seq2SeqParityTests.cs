using System.Text.Json;
using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Modeling;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Tests.Modeling;

/// <summary>
/// BART and T5 against HuggingFace's outputs for the hf-tiny-seq2seq fixtures (token ids from the fixtures): BART's
/// classification logits at the last eos, and for the conditional-generation models the first-step vocabulary logits
/// and the teacher-forced log-probabilities of every target, one row at a time and in one right-padded batch.
/// </summary>
[TestClass]
public sealed class Seq2SeqParityTests
{
    private const double LogitTolerance = 1e-4;
    private const double LogSoftmaxTolerance = 2e-4;

    public static IEnumerable<object[]> Generators => [["bart-lm"], ["t5"], ["t5-v1_1"]];

    internal static string Folder(string model) => TestPaths.Fixtures("hf-tiny-seq2seq", model);

    internal static JsonElement Expected(string model)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(model), "expected.json")));
        return json.RootElement.Clone();
    }

    private static T Load<T>(string model, Func<TransformerConfig, T> create)
        where T : TransformerModel
    {
        var model_ = create(TransformerConfig.FromFolder(Folder(model)));
        var report = TransformerModels.LoadWeights(model_, SafeTensorsFile.Read(Path.Combine(Folder(model), "model.safetensors")), Folder(model));
        Assert.IsTrue(report.IsComplete, report.ToString());
        Assert.AreEqual(0, report.Unexpected.Count, report.ToString());
        model_.eval();
        return model_;
    }

    private static ConditionalGenerationModel Generator(string model) =>
        Load(model, c => (ConditionalGenerationModel)TransformerModels.CreateForLanguageModeling(c));

    private static double[] Flatten(JsonElement e) =>
        e.ValueKind == JsonValueKind.Array ? [.. e.EnumerateArray().SelectMany(Flatten)] : [e.GetDouble()];

    /// <summary>The largest |expected − actual|, after checking the element counts agree.</summary>
    internal static double MaxDifference(JsonElement expected, Tensor actual, string what)
    {
        var flat = Flatten(expected);
        var values = actual.to(ScalarType.Float32).contiguous().data<float>().ToArray();
        Assert.AreEqual(flat.Length, values.Length, $"{what}: element count");
        return flat.Zip(values, (e, a) => Math.Abs(e - a)).Max();
    }

    private readonly Dictionary<string, double> _worst = [];

    /// <summary>Asserts the tolerance and keeps the largest difference per output kind, printed after each test.</summary>
    private void AssertClose(JsonElement expected, Tensor actual, double tolerance, string what, string kind)
    {
        var worst = MaxDifference(expected, actual, what);
        Assert.IsTrue(worst <= tolerance, $"{what}: max |Δ| {worst:E2} > {tolerance:E0}");
        _worst[kind] = Math.Max(_worst.GetValueOrDefault(kind), worst);
    }

    [TestCleanup]
    public void PrintLargestDifferences()
    {
        foreach (var (kind, worst) in _worst.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            Console.WriteLine($"max |Δ| {kind}: {worst:E2}");
        }
    }

    private static Tensor Ids(IEnumerable<long> ids) { var a = ids.ToArray(); return tensor(a, [1, a.Length]); }

    private static long[] Longs(JsonElement e) => [.. e.EnumerateArray().Select(v => v.GetInt64())];

    [TestMethod]
    public void BartClassifiesFromTheLastEosOfEachRow()
    {
        using var model = Load("bart", TransformerModels.CreateForSequenceClassification);
        var expected = Expected("bart");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var c in expected.GetProperty("cases").EnumerateArray())
        {
            var ids = Ids(Longs(c.GetProperty("input_ids")));
            var mask = ones_like(ids);
            var what = $"bart case {c.GetProperty("id").GetInt32()} ({c.GetProperty("eos_count").GetInt32()} eos)";
            AssertClose(c.GetProperty("logits"), model.forward(ids, mask, null), LogitTolerance, what + " logits", "bart logits");
            var decoder = model.HiddenStates(ids, mask, null);
            var rows = Math.Min(4, decoder.shape[1]);
            AssertClose(c.GetProperty("decoder_last_hidden_state_0_4x4"), decoder[0, TensorIndex.Slice(0, rows), TensorIndex.Slice(0, 4)], LogitTolerance, what + " decoder hidden", "bart decoder hidden");
            AssertClose(c.GetProperty("eos_hidden"), decoder[0, c.GetProperty("pooled_position").GetInt64()], LogitTolerance, what + " pooled state", "bart eos hidden");
        }

        foreach (var batch in expected.GetProperty("batches").EnumerateArray().Append(expected.GetProperty("random_batch")))
        {
            var ids = ModelParityTests.Ids(batch.GetProperty("input_ids"));
            AssertClose(batch.GetProperty("logits"), model.forward(ids, ModelParityTests.Ids(batch.GetProperty("attention_mask")), null), LogitTolerance, "bart padded batch", "bart batch logits");
        }
    }

    [TestMethod]
    [DynamicData(nameof(Generators))]
    public void EncoderStatesAndFirstStepLogitsMatch(string name)
    {
        using var model = Generator(name);
        var expected = Expected(name);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var c in expected.GetProperty("cases").EnumerateArray())
        {
            var what = $"{name} case {c.GetProperty("id").GetInt32()}";
            var ids = Ids(Longs(c.GetProperty("input_ids")));
            var mask = ones_like(ids);
            var encoder = model.HiddenStates(ids, mask, null);
            var rows = Math.Min(4, encoder.shape[1]);
            AssertClose(c.GetProperty("encoder_last_hidden_state_0_4x4"), encoder[0, TensorIndex.Slice(0, rows), TensorIndex.Slice(0, 4)], LogitTolerance, what + " encoder", name + " encoder hidden");
            if (c.TryGetProperty("encoder_last_hidden_state", out var full))
            {
                AssertClose(full, encoder[0], LogitTolerance, what + " full encoder state", name + " encoder hidden");
            }

            var first = model.PredictTokens(model.DecoderHiddenStates(Ids(Longs(c.GetProperty("first_step_decoder_input_ids"))), encoder, mask));
            AssertClose(c.GetProperty("first_step_logits"), first[0, -1], LogitTolerance, what + " first-step logits", name + " first-step logits");
            if (c.TryGetProperty("word_step_logits", out var word))
            {
                var logits = model.PredictTokens(model.DecoderHiddenStates(Ids(Longs(c.GetProperty("word_step_decoder_input_ids"))), encoder, mask));
                AssertClose(word, logits[0, -1], LogitTolerance, what + " word-step logits", name + " word-step logits");
            }
        }
    }

    [TestMethod]
    [DynamicData(nameof(Generators))]
    public void TeacherForcedTargetLogProbabilitiesMatch(string name)
    {
        using var model = Generator(name);
        var expected = Expected(name);
        var targets = expected.GetProperty("targets").EnumerateArray().ToDictionary(t => t.GetProperty("target").GetString()!, t => Longs(t.GetProperty("labels")));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var c in expected.GetProperty("cases").EnumerateArray())
        {
            var ids = Ids(Longs(c.GetProperty("input_ids")));
            var mask = ones_like(ids);
            var encoder = model.HiddenStates(ids, mask, null);
            foreach (var t in c.GetProperty("targets").EnumerateArray())
            {
                var labels = Ids(targets[t.GetProperty("target").GetString()!]);
                var logSoftmax = model.PredictTokens(model.DecoderHiddenStates(model.ShiftRight(labels), encoder, mask)).log_softmax(-1);
                var picked = logSoftmax.gather(2, labels.unsqueeze(2)).squeeze(2)[0];
                var what = $"{name} case {c.GetProperty("id").GetInt32()} target '{t.GetProperty("target").GetString()}'";
                AssertClose(t.GetProperty("token_log_softmax"), picked, LogSoftmaxTolerance, what, name + " target log-softmax");
                var count = picked.shape[0];
                Assert.AreEqual(t.GetProperty("sum").GetDouble(), picked.sum().item<float>(), LogSoftmaxTolerance * count, what + " sum");
                Assert.AreEqual(t.GetProperty("mean").GetDouble(), picked.mean().item<float>(), LogSoftmaxTolerance, what + " mean");
            }
        }
    }

    [TestMethod]
    [DynamicData(nameof(Generators))]
    public void OneRightPaddedBatchOfEveryCaseAndTargetMatches(string name)
    {
        using var model = Generator(name);
        var batch = Expected(name).GetProperty("batch");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = ModelParityTests.Ids(batch.GetProperty("input_ids"));
        var mask = ModelParityTests.Ids(batch.GetProperty("attention_mask"));
        var labels = ModelParityTests.Ids(batch.GetProperty("labels"));
        var padded = labels.eq(-100);
        var decoderInputs = model.ShiftRight(labels.masked_fill(padded, model.Config.PadTokenId ?? 0));
        CollectionAssert.AreEqual(Flatten(batch.GetProperty("decoder_input_ids")).Select(v => (long)v).ToArray(), decoderInputs.data<long>().ToArray(), "decoder inputs");
        var logSoftmax = model.PredictTokens(model.DecoderHiddenStates(decoderInputs, model.HiddenStates(ids, mask, null), mask)).log_softmax(-1);
        var picked = logSoftmax.gather(2, labels.masked_fill(padded, 0).unsqueeze(2)).squeeze(2);   // (N, U)
        var rows = batch.GetProperty("token_log_softmax").EnumerateArray().ToList();
        var worst = 0.0;
        for (var r = 0; r < rows.Count; r++)
        {
            var count = rows[r].GetArrayLength();
            worst = Math.Max(worst, MaxDifference(rows[r], picked[r, TensorIndex.Slice(0, count)], $"{name} batch row {r}"));
        }

        Assert.IsTrue(worst <= LogSoftmaxTolerance, $"{name} batch: max |Δ| {worst:E2}");
        _worst[name + " batch target log-softmax"] = worst;
        var loss = -picked.masked_select(padded.logical_not()).mean().item<float>();
        Assert.AreEqual(batch.GetProperty("hf_loss").GetDouble(), loss, LogSoftmaxTolerance, "HuggingFace's labels= loss over the batch");
    }

    [TestMethod]
    [DataRow("t5")]
    [DataRow("t5-v1_1")]
    public void RelativePositionBucketsMatchHuggingFace(string name)
    {
        var buckets = Expected(name).GetProperty("relative_position_buckets");
        var relative = tensor(Longs(buckets.GetProperty("relative_positions")));
        var (count, distance) = (buckets.GetProperty("num_buckets").GetInt32(), buckets.GetProperty("max_distance").GetInt32());
        CollectionAssert.AreEqual(Longs(buckets.GetProperty("encoder_bidirectional")),
            T5RelativePositions.Bucket(relative, bidirectional: true, count, distance).data<long>().ToArray(), "encoder buckets");
        CollectionAssert.AreEqual(Longs(buckets.GetProperty("decoder_causal")),
            T5RelativePositions.Bucket(relative, bidirectional: false, count, distance).data<long>().ToArray(), "decoder buckets");
    }

    [TestMethod]
    [DataRow("bart")]
    [DataRow("bart-lm")]
    [DataRow("t5")]
    [DataRow("t5-v1_1")]
    public void EveryStoredTensorIsUsedWithItsShapeAndTiedOnesAreShared(string name)
    {
        using var model = name == "bart" ? (TransformerModel)Load(name, TransformerModels.CreateForSequenceClassification) : Generator(name);
        var expected = Expected(name);
        var state = model.state_dict();
        foreach (var entry in expected.GetProperty("tensors").EnumerateObject())
        {
            Assert.IsTrue(state.ContainsKey(entry.Name), $"{name}: the model has no '{entry.Name}'");
            CollectionAssert.AreEqual(Longs(entry.Value), state[entry.Name].shape, entry.Name);
        }

        Assert.AreEqual(expected.GetProperty("tensors").EnumerateObject().Count(), state.Count, $"{name}: the model holds exactly the stored tensors (tied ones are not stored again)");
        var tied = expected.GetProperty("tied_weights").EnumerateObject().Select(p => (p.Name, p.Value.GetString())).OrderBy(p => p.Name).ToList();
        CollectionAssert.AreEqual(tied, model.TiedWeights.OrderBy(p => p.Tied).Select(p => (p.Tied, (string?)p.Source)).ToList(), $"{name}: tied weights");
    }

    [TestMethod]
    public void ConfigSwitchesAreReadFromConfigJson()
    {
        var t5 = TransformerConfig.FromFolder(Folder("t5"));
        Assert.AreEqual((Activation.Relu, false, true, 1e-6), (t5.HiddenAct, t5.GatedFeedForward, t5.TieWordEmbeddings, t5.LayerNormEps));
        var v11 = TransformerConfig.FromFolder(Folder("t5-v1_1"));
        Assert.AreEqual((Activation.GeluTanh, true, false, 3, 2, 10), (v11.HiddenAct, v11.GatedFeedForward, v11.TieWordEmbeddings, v11.DecoderLayers, v11.NumLayers, v11.HeadDim));
        var bart = TransformerConfig.FromFolder(Folder("bart"));
        Assert.AreEqual((false, 4, 6, 61, 53, 2), (bart.ScaleEmbedding, bart.NumHeads, bart.DecoderHeads, bart.IntermediateSize, bart.DecoderIntermediateSize, bart.DecoderStartTokenId));
        Assert.IsTrue(TransformerConfig.FromFolder(Folder("bart-lm")).ScaleEmbedding);

        // An epsilon of 1e-5 moves T5's outputs by less than the parity tolerance, so it is checked here.
        var json = (System.Text.Json.Nodes.JsonObject)t5.Json.DeepClone();
        json["layer_norm_epsilon"] = 1e-5;
        json["feed_forward_proj"] = "gated-silu";
        var changed = TransformerConfig.Parse(json);
        Assert.AreEqual((1e-5, Activation.Silu, true), (changed.LayerNormEps, changed.HiddenAct, changed.GatedFeedForward));
        json["feed_forward_proj"] = "fancy-relu";
        Assert.Throws<InvalidDataException>(() => TransformerConfig.Parse(json));
    }

    [TestMethod]
    [DataRow("bart")]
    [DataRow("bart-lm")]
    [DataRow("t5")]
    [DataRow("t5-v1_1")]
    public void BuildingRunningAndDisposingLeavesNoTensors(string name)
    {
        var config = TransformerConfig.FromFolder(Folder(name));
        void Cycle()
        {
            using (var classifier = name == "bart" ? TransformerModels.CreateForSequenceClassification(config) : null)
            using (var generator = (ConditionalGenerationModel)TransformerModels.CreateForLanguageModeling(config))
            using (var scope = NewDisposeScope())
            using (no_grad())
            {
                var ids = tensor(new long[] { 5, 6, 7, 2, 5, 8, 2, 1 }, [2, 4]);
                var mask = ones_like(ids);
                classifier?.forward(ids, mask, null);
                generator.PredictTokens(generator.DecoderHiddenStates(generator.ShiftRight(ids), generator.HiddenStates(ids, mask, null), mask));
            }
        }

        Cycle();
        var before = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (var i = 0; i < 3; i++)
        {
            Cycle();
        }

        Assert.AreEqual(before, TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [TestMethod]
    public void RmsNormUsesTheConfiguredEpsilon()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new float[] { 1e-3f, -2e-3f, 3e-3f, 0 }, [1, 4]);
        var meanSquare = x.pow(2).mean().item<float>();
        foreach (var eps in new[] { 1e-6, 1e-5 })
        {
            using var norm = new T5LayerNorm(4, eps);
            var expected = 1e-3 / Math.Sqrt(meanSquare + eps);
            Assert.AreEqual(expected, norm.call(x)[0, 0].item<float>(), 1e-4 * expected, $"eps {eps}");
        }
    }
}
