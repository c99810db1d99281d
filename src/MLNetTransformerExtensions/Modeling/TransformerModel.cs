using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Modeling;

/// <summary>What every model of this library shares: its config and the key prefix of its body in checkpoints.</summary>
public abstract class TransformerModel : nn.Module
{
    /// <summary>Creates the module; derived classes register their fields.</summary>
    /// <param name="name">The module's name.</param>
    /// <param name="config">The config it was built from.</param>
    protected TransformerModel(string name, TransformerConfig config) : base(name) => Config = config;

    /// <summary>The config the model was built from.</summary>
    public TransformerConfig Config { get; }

    /// <summary>
    /// The attribute name of the base model inside task models (<c>bert</c>, <c>roberta</c>, <c>distilbert</c>,
    /// <c>transformer</c>, BART's <c>model</c>; empty for T5, whose task model has no base module): checkpoints of the
    /// bare base model carry no such prefix.
    /// </summary>
    public string BasePrefix => Config.Family switch
    {
        ModelFamily.Bert => "bert",
        ModelFamily.Roberta => "roberta",
        ModelFamily.DistilBert => "distilbert",
        ModelFamily.Bart => "model",
        ModelFamily.T5 => string.Empty,
        _ => "transformer",
    };

    /// <summary>
    /// Parameter-name prefixes of freshly initialised parts (the task head), reported when a checkpoint lacks them.
    /// </summary>
    public abstract IReadOnlyList<string> HeadPrefixes { get; }

    /// <summary>
    /// Checkpoint keys that are expected to be absent from the file because they share storage with another key:
    /// (absent key, key whose tensor it uses).
    /// </summary>
    public virtual IReadOnlyList<(string Tied, string Source)> TiedWeights => [];

    /// <summary>The base model's final hidden states (HuggingFace's <c>last_hidden_state</c>).</summary>
    /// <param name="inputIds">Token ids (B, T), int64.</param>
    /// <param name="attentionMask">1 for real tokens, 0 for padding (B, T), int64.</param>
    /// <param name="tokenTypeIds">Segment ids (B, T), or null for all zeros.</param>
    /// <returns>Hidden states (B, T, H).</returns>
    public abstract Tensor HiddenStates(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds);

    /// <summary>
    /// The attention weights of every layer of the base model for a batch (HuggingFace's <c>attentions</c>, what a
    /// forward pass with <c>output_attentions=True</c> returns; for BART and T5, the encoder's self-attention): each
    /// query row is a probability distribution over the keys, zero on padded keys, and for GPT-2 zero above the
    /// diagonal (a token sees only itself and earlier tokens). An inspection path: the weights are computed explicitly
    /// instead of in the fused attention kernel, so it is slower than <see cref="HiddenStates"/>; call
    /// <see cref="nn.Module.eval"/> first, or attention dropout applies.
    /// </summary>
    /// <param name="inputIds">Token ids (B, T), int64.</param>
    /// <param name="attentionMask">1 for real tokens, 0 for padding (B, T), int64.</param>
    /// <param name="tokenTypeIds">Segment ids (B, T), or null for all zeros.</param>
    /// <returns>One (B, heads, T, T) float tensor per layer, first layer first. The caller owns (and disposes) them; they belong to no dispose scope.</returns>
    public IReadOnlyList<Tensor> Attentions(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(attentionMask);
        using var capture = AttentionCapture.Begin();
        using (no_grad())
        using (NewDisposeScope())
        {
            HiddenStates(inputIds, attentionMask, tokenTypeIds);
        }

        return capture.Weights;
    }
}

/// <summary>A model that maps token ids to class logits, as HuggingFace's <c>*ForSequenceClassification</c>.</summary>
public abstract class SequenceClassificationModel : TransformerModel
{
    /// <summary>Creates the module.</summary>
    /// <param name="name">The module's name.</param>
    /// <param name="config">The config; its labels size the head.</param>
    protected SequenceClassificationModel(string name, TransformerConfig config) : base(name, config)
    {
    }

    /// <summary>Class logits for a padded batch.</summary>
    /// <param name="inputIds">Token ids (B, T), int64.</param>
    /// <param name="attentionMask">1 for real tokens, 0 for padding (B, T), int64.</param>
    /// <param name="tokenTypeIds">Segment ids (B, T), or null for all zeros.</param>
    /// <returns>Logits (B, num_labels).</returns>
    public abstract Tensor forward(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds);
}

/// <summary>
/// A model with a vocabulary head: masked-LM for encoders (HuggingFace's <c>*ForMaskedLM</c>), causal-LM for GPT-2
/// (<c>GPT2LMHeadModel</c>). The body and the head are separate calls, so only the positions that are scored
/// go through the (large) vocabulary projection.
/// </summary>
public abstract class LanguageModel : TransformerModel
{
    /// <summary>Creates the module.</summary>
    /// <param name="name">The module's name.</param>
    /// <param name="config">The config.</param>
    protected LanguageModel(string name, TransformerConfig config) : base(name, config)
    {
    }

    /// <summary>Vocabulary logits for hidden states.</summary>
    /// <param name="hidden">Hidden states (..., H).</param>
    /// <returns>Logits (..., vocab_size).</returns>
    public abstract Tensor PredictTokens(Tensor hidden);
}

/// <summary>
/// An encoder-decoder with a vocabulary head, as HuggingFace's <c>BartForConditionalGeneration</c> and
/// <c>T5ForConditionalGeneration</c>: the input goes through the encoder once, the decoder reads target tokens
/// (shifted right behind <see cref="TransformerConfig.DecoderStartTokenId"/>) and attends to the encoder's states.
/// <see cref="TransformerModel.HiddenStates"/> is the encoder's output; <see cref="LanguageModel.PredictTokens"/> maps
/// decoder states to vocabulary logits.
/// </summary>
public abstract class ConditionalGenerationModel : LanguageModel
{
    /// <summary>Creates the module.</summary>
    /// <param name="name">The module's name.</param>
    /// <param name="config">The config.</param>
    protected ConditionalGenerationModel(string name, TransformerConfig config) : base(name, config)
    {
    }

    /// <summary>The decoder's final hidden states for teacher-forced decoder inputs.</summary>
    /// <param name="decoderInputIds">Decoder input ids (B, U), int64: the start token, then the targets but their last.</param>
    /// <param name="encoderHidden">The encoder's output for the inputs (B, T, H).</param>
    /// <param name="attentionMask">The inputs' mask (B, T): cross-attention skips padded inputs.</param>
    /// <returns>Hidden states (B, U, H); the decoder attends causally, so right padding of the targets changes nothing before it.</returns>
    public abstract Tensor DecoderHiddenStates(Tensor decoderInputIds, Tensor encoderHidden, Tensor attentionMask);

    /// <summary>HuggingFace's <c>shift_tokens_right</c>: the decoder start token, then every target but the last.</summary>
    /// <param name="labels">Target ids (B, U), int64, padded with the pad id (never -100).</param>
    /// <returns>Decoder input ids (B, U).</returns>
    public Tensor ShiftRight(Tensor labels) => Layers.ShiftRight(labels, Config.DecoderStartTokenId ?? Config.PadTokenId ?? 0);
}

/// <summary>Small pieces every family uses: activations, attention masks, HuggingFace's weight initialisation.</summary>
internal static class Layers
{
    public static Tensor Activate(Tensor x, Activation activation) => activation switch
    {
        Activation.Gelu => nn.functional.gelu(x),
        Activation.GeluTanh => nn.functional.gelu(x, GELU.Approximate.tanh),
        Activation.Relu => nn.functional.relu(x),
        _ => nn.functional.silu(x),
    };

    /// <summary>
    /// The additive mask for bidirectional attention: 0 where a key is a real token, the most negative float where it is
    /// padding. Null when nothing is padded, so attention runs unmasked (faster kernels).
    /// </summary>
    public static Tensor? EncoderAttentionMask(Tensor attentionMask, ScalarType dtype)
    {
        if (attentionMask.min().item<long>() != 0)
        {
            return null;
        }

        // (B, T) -> (B, 1, 1, T): broadcast over heads and queries.
        var padding = attentionMask.eq(0).unsqueeze(1).unsqueeze(2);
        return zeros(padding.shape, dtype).masked_fill(padding, MinValue(dtype));
    }

    /// <summary>
    /// The additive mask for causal attention over a padded batch, or null when nothing is padded (then the caller
    /// asks attention for its causal mode). A padded query row keeps finite scores, so no NaN can leak.
    /// </summary>
    public static Tensor? DecoderAttentionMask(Tensor attentionMask, ScalarType dtype)
    {
        if (attentionMask.min().item<long>() != 0)
        {
            return null;
        }

        var length = attentionMask.shape[1];
        var future = ones(length, length, ScalarType.Bool).triu(1);              // (T, T): key after query
        var padding = attentionMask.eq(0).unsqueeze(1).unsqueeze(2);          // (B, 1, 1, T)
        var blocked = future.unsqueeze(0).unsqueeze(0).logical_or(padding);   // (B, 1, T, T)
        return zeros(blocked.shape, dtype).masked_fill(blocked, MinValue(dtype));
    }

    /// <summary>HuggingFace's <c>shift_tokens_right</c>: (B, U) -> (B, U), <paramref name="start"/> then ids[:, :-1].</summary>
    public static Tensor ShiftRight(Tensor ids, long start) =>
        cat([full(ids.shape[0], 1, start, dtype: ids.dtype, device: ids.device), ids.narrow(1, 0, ids.shape[1] - 1)], 1);

    /// <summary>0 where <paramref name="allowed"/> is true, the most negative value of <paramref name="dtype"/> elsewhere.</summary>
    public static Tensor AdditiveMask(Tensor allowed, ScalarType dtype) =>
        zeros(allowed.shape, dtype).masked_fill(allowed.logical_not(), MinValue(dtype));

    private static Scalar MinValue(ScalarType dtype) => dtype switch
    {
        ScalarType.Float16 => -65504.0,
        ScalarType.BFloat16 => -3.3895313892515355e38,
        ScalarType.Float64 => double.MinValue,
        _ => float.MinValue,
    };

    /// <summary>
    /// hidden[b, first real token of b]: (B, T, H) -> (B, H). Position 0 for unpadded and right-padded rows (HuggingFace's
    /// choice), and the first real token of a left-padded row.
    /// </summary>
    public static Tensor FirstToken(Tensor hidden, Tensor attentionMask) =>
        hidden[arange(hidden.shape[0], dtype: ScalarType.Int64, device: hidden.device), attentionMask.argmax(1)];

    /// <summary>Attention through libtorch's fused kernel; <paramref name="scale"/> rescales the default 1/√d.</summary>
    public static Tensor Attend(Tensor query, Tensor key, Tensor value, Tensor? mask, double dropout, bool causal, double scale = 1.0)
    {
        if (scale != 1.0)
        {
            query = query * scale;
        }

        if (AttentionCapture.Current is { } capture)
        {
            // The same product as the fused kernel, written out so the weights exist to be kept (HuggingFace's eager path).
            var scores = matmul(query, key.transpose(-2, -1)).div(Math.Sqrt(query.shape[^1]));
            if (mask is not null)
            {
                scores = scores + mask;
            }
            else if (causal)
            {
                scores = scores.masked_fill(ones(scores.shape[^2], scores.shape[^1], ScalarType.Bool, scores.device).triu(1), float.NegativeInfinity);
            }

            var weights = nn.functional.dropout(scores.softmax(-1), dropout, training: dropout > 0);
            capture.Add(weights);
            return matmul(weights, value);
        }

        return nn.functional.scaled_dot_product_attention(query, key, value, mask, dropout, is_casual: causal && mask is null);
    }

    /// <summary>
    /// HuggingFace's <c>_init_weights</c>: normal(0, range) weights, zero biases, unit LayerNorms, and a zero row for the
    /// padding token in embeddings that have one (word embeddings; RoBERTa's positions too).
    /// </summary>
    public static void InitializeWeights(nn.Module root, TransformerConfig config)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope(); // views such as a padding row are temporaries
        foreach (var (name, module) in root.named_modules())
        {
            switch (module)
            {
                case Linear linear:
                    nn.init.normal_(linear.weight!, 0, config.InitializerRange);
                    if (linear.bias is not null)
                    {
                        nn.init.zeros_(linear.bias);
                    }

                    break;
                case Embedding embedding:
                    nn.init.normal_(embedding.weight!, 0, config.InitializerRange);
                    var padded = name.EndsWith("word_embeddings", StringComparison.Ordinal)
                        || (config.Family == ModelFamily.Roberta && name.EndsWith("position_embeddings", StringComparison.Ordinal));
                    if (padded && config.PadTokenId is int pad && config.Family != ModelFamily.Gpt2)
                    {
                        embedding.weight![pad].zero_();
                    }

                    break;
                case LayerNorm norm:
                    nn.init.ones_(norm.weight!);
                    nn.init.zeros_(norm.bias!);
                    break;
                case Conv1D conv:
                    nn.init.normal_(conv.weight, 0, config.InitializerRange);
                    nn.init.zeros_(conv.bias);
                    break;
            }
        }
    }
}

/// <summary>
/// GPT-2's <c>Conv1D</c>: a linear layer whose weight is stored (in, out), the transpose of <c>nn.Linear</c>, as in
/// HuggingFace's <c>pytorch_utils.Conv1D</c>.
/// </summary>
internal sealed class Conv1D : nn.Module<Tensor, Tensor>
{
    /// <summary>The weight, (in, out).</summary>
    public readonly Parameter weight;

    /// <summary>The bias, (out).</summary>
    public readonly Parameter bias;

    /// <summary>Creates the layer with a normal(0, 0.02) weight and a zero bias.</summary>
    /// <param name="inFeatures">Input size.</param>
    /// <param name="outFeatures">Output size.</param>
    public Conv1D(int inFeatures, int outFeatures) : base(nameof(Conv1D))
    {
        weight = new Parameter(empty(inFeatures, outFeatures).normal_(0, 0.02));
        bias = new Parameter(zeros(outFeatures));
        RegisterComponents();
    }

    /// <summary>x · W + b.</summary>
    /// <param name="input">(..., in).</param>
    /// <returns>(..., out).</returns>
    public override Tensor forward(Tensor input) => addmm(bias, input.reshape(-1, input.shape[^1]), weight, 1, 1)
        .view([.. input.shape[..^1], weight.shape[1]]);
}
