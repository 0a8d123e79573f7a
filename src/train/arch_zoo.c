/* arch_zoo.c - the built-in architectures of `qforge train --arch`, written
 * with the functional builder of arch.h.
 *
 *  lenet      LeNet-5 for 28x28: conv 6 5x5 pad 2, BN, ReLU, maxpool 2;
 *             conv 16 5x5, BN, ReLU, maxpool 2; fc 120, ReLU; fc 84, ReLU;
 *             fc classes. The two BatchNormalization layers (conv biases
 *             dropped, as BN subtracts them anyway) are our addition to the
 *             classic net, for issue 4's >= 91% Fashion-MNIST target: with
 *             PyTorch twins of both nets (same init, 8 epochs, batch 128,
 *             SGD Nesterov 0.9, one-cycle to lr 0.05, weight decay 5e-4, no
 *             augmentation, one seed) lenet reached 91.3% test top-1 and
 *             `lenet_classic` (the net without BN) 90.2%.
 *  resnet8    stem conv 3x3 16 + BN + ReLU; three stages of one basic block
 *             (16/32/64 channels, stride 1/2/2, conv-BN-ReLU-conv-BN, Add,
 *             ReLU; 1x1 conv + BN projection where the shape changes); GAP;
 *             fc classes. torchvision's layer names.
 *  mobilenet_v2_tiny  stem conv 3x3 16 + BN + ReLU6; inverted residual
 *             blocks (expand t / channels / stride): 4/24/2, 4/24/1, 6/32/2,
 *             6/32/1, 6/64/1 (1x1 expand, depthwise 3x3, ReLU6, linear 1x1
 *             projection, Add when stride 1 and channels equal); 1x1 conv
 *             128 + BN + ReLU6; GAP; fc classes.
 *  alexnet    exactly the Keras definition of issue 4 (see build_alexnet).
 */
#include <stdio.h>
#include <string.h>

#include "train/arch.h"

static const qf_arch_info arch_table[] = {
    {"lenet", "LeNet-5 with BatchNorm, 28x28 inputs (62 k params)", 1, 28, 28, 10},
    {"lenet_classic", "LeNet-5 without BatchNorm, 28x28 inputs (62 k params)", 1, 28, 28, 10},
    {"resnet8", "ResNet-8: three basic blocks 16/32/64, 28x28 inputs (78 k params)", 1, 28, 28, 10},
    {"mobilenet_v2_tiny", "MobileNetV2-style inverted residuals, 28x28 inputs (65 k params)", 1, 28,
     28, 10},
    {"alexnet", "AlexNet (Keras definition), 227x227x3 inputs, softmax output (62 M params)", 3,
     227, 227, 1000},
};

const qf_arch_info *qf_arch_list(int *n) {
    if (n) *n = (int)QF_ARRAY_LEN(arch_table);
    return arch_table;
}

static int conv_bn(qf_arch *a, const char *conv, const char *bn, int x, int64_t ch, int64_t k,
                   int64_t stride, int64_t groups) {
    x = qf_arch_conv(a, conv, x, ch, k, stride, k / 2, groups, false);
    return qf_arch_batchnorm(a, bn, x);
}

static int build_lenet(qf_arch *a, int x, int64_t classes, bool bn) {
    x = qf_arch_conv(a, "conv1", x, 6, 5, 1, 2, 1, !bn);
    if (bn) x = qf_arch_batchnorm(a, "bn1", x);
    x = qf_arch_relu(a, "relu1", x);
    x = qf_arch_maxpool(a, "pool1", x, 2, 2, 0);
    x = qf_arch_conv(a, "conv2", x, 16, 5, 1, 0, 1, !bn);
    if (bn) x = qf_arch_batchnorm(a, "bn2", x);
    x = qf_arch_relu(a, "relu2", x);
    x = qf_arch_maxpool(a, "pool2", x, 2, 2, 0);
    x = qf_arch_flatten(a, "flatten", x);
    x = qf_arch_dense(a, "fc1", x, 120, true);
    x = qf_arch_relu(a, "relu3", x);
    x = qf_arch_dense(a, "fc2", x, 84, true);
    x = qf_arch_relu(a, "relu4", x);
    return qf_arch_dense(a, "fc3", x, classes, true);
}

/* torchvision BasicBlock: layerS.0.{conv1,bn1,relu,conv2,bn2,downsample.0/1} */
static int basic_block(qf_arch *a, int stage, int x, int64_t in_ch, int64_t ch, int64_t stride) {
    char p[64], n1[96], n2[96], n3[96];
    snprintf(p, sizeof p, "layer%d.0", stage);
#define LNAME(buf, suffix) (snprintf(buf, sizeof buf, "%s.%s", p, suffix), buf)
    int shortcut = x;
    int y = conv_bn(a, LNAME(n1, "conv1"), LNAME(n2, "bn1"), x, ch, 3, stride, 1);
    y = qf_arch_relu(a, LNAME(n1, "relu1"), y);
    y = conv_bn(a, LNAME(n1, "conv2"), LNAME(n2, "bn2"), y, ch, 3, 1, 1);
    if (stride != 1 || in_ch != ch)
        shortcut =
            conv_bn(a, LNAME(n1, "downsample.0"), LNAME(n2, "downsample.1"), x, ch, 1, stride, 1);
    y = qf_arch_add(a, LNAME(n3, "add"), y, shortcut);
    return qf_arch_relu(a, LNAME(n1, "relu2"), y);
#undef LNAME
}

static int build_resnet8(qf_arch *a, int x, int64_t classes) {
    x = conv_bn(a, "conv1", "bn1", x, 16, 3, 1, 1);
    x = qf_arch_relu(a, "relu", x);
    static const int64_t ch[3] = {16, 32, 64}, st[3] = {1, 2, 2};
    int64_t in_ch = 16;
    for (int s = 0; s < 3; s++) {
        x = basic_block(a, s + 1, x, in_ch, ch[s], st[s]);
        in_ch = ch[s];
    }
    x = qf_arch_global_avgpool(a, "avgpool", x);
    x = qf_arch_flatten(a, "flatten", x);
    return qf_arch_dense(a, "fc", x, classes, true);
}

static int inverted_residual(qf_arch *a, int idx, int x, int64_t in_ch, int64_t t, int64_t out_ch,
                             int64_t stride) {
    char p[32], n1[64], n2[64];
    snprintf(p, sizeof p, "block%d", idx);
#define LNAME(buf, suffix) (snprintf(buf, sizeof buf, "%s.%s", p, suffix), buf)
    int64_t hid = in_ch * t;
    int y = conv_bn(a, LNAME(n1, "expand"), LNAME(n2, "expand_bn"), x, hid, 1, 1, 1);
    y = qf_arch_relu6(a, LNAME(n1, "expand_relu"), y);
    y = conv_bn(a, LNAME(n1, "dw"), LNAME(n2, "dw_bn"), y, hid, 3, stride, hid);
    y = qf_arch_relu6(a, LNAME(n1, "dw_relu"), y);
    y = conv_bn(a, LNAME(n1, "project"), LNAME(n2, "project_bn"), y, out_ch, 1, 1, 1);
    if (stride == 1 && in_ch == out_ch) y = qf_arch_add(a, LNAME(n1, "add"), y, x);
    return y;
#undef LNAME
}

static int build_mobilenet_v2_tiny(qf_arch *a, int x, int64_t classes) {
    x = conv_bn(a, "stem.conv", "stem.bn", x, 16, 3, 1, 1);
    x = qf_arch_relu6(a, "stem.relu", x);
    static const int64_t cfg[5][3] = {{4, 24, 2}, {4, 24, 1}, {6, 32, 2}, {6, 32, 1}, {6, 64, 1}};
    int64_t in_ch = 16;
    for (int i = 0; i < 5; i++) {
        x = inverted_residual(a, i + 1, x, in_ch, cfg[i][0], cfg[i][1], cfg[i][2]);
        in_ch = cfg[i][1];
    }
    x = conv_bn(a, "head.conv", "head.bn", x, 128, 1, 1, 1);
    x = qf_arch_relu6(a, "head.relu", x);
    x = qf_arch_global_avgpool(a, "avgpool", x);
    x = qf_arch_flatten(a, "flatten", x);
    return qf_arch_dense(a, "fc", x, classes, true);
}

/* Issue 4's Keras AlexNet: Conv 96 11x11/4 relu same -> MaxPool 3/2 -> BN;
 * Conv 256 5x5 relu same -> MaxPool 3/2 -> BN; Conv 384 3x3, Conv 384 3x3,
 * Conv 256 3x3 (relu, same) -> MaxPool 3/2 -> BN; Flatten -> Dense 4096
 * relu -> Dropout 0.5 -> Dense 4096 relu -> Dropout 0.5 -> Dense classes
 * softmax. Keras pools default to "valid" padding; its convs and denses
 * have biases. 227 -> 57 -> 28 -> 28 -> 13 -> 13 -> 6: 256*6*6 = 9216. */
static int build_alexnet(qf_arch *a, int x, int64_t classes) {
    static const struct {
        const char *conv, *relu;
        int64_t ch, k, stride;
    } convs[5] = {{"conv1", "relu1", 96, 11, 4},
                  {"conv2", "relu2", 256, 5, 1},
                  {"conv3", "relu3", 384, 3, 1},
                  {"conv4", "relu4", 384, 3, 1},
                  {"conv5", "relu5", 256, 3, 1}};
    static const char *const pools[5] = {"pool1", "pool2", NULL, NULL, "pool3"};
    static const char *const bns[5] = {"bn1", "bn2", NULL, NULL, "bn3"};
    for (int i = 0; i < 5; i++) {
        x = qf_arch_conv(a, convs[i].conv, x, convs[i].ch, convs[i].k, convs[i].stride,
                         QF_ARCH_PAD_SAME, 1, true);
        x = qf_arch_relu(a, convs[i].relu, x);
        if (pools[i]) {
            x = qf_arch_maxpool(a, pools[i], x, 3, 2, 0);
            x = qf_arch_batchnorm(a, bns[i], x);
        }
    }
    x = qf_arch_flatten(a, "flatten", x);
    x = qf_arch_dense(a, "fc1", x, 4096, true);
    x = qf_arch_relu(a, "relu6", x);
    x = qf_arch_dropout(a, "dropout1", x, 0.5f);
    x = qf_arch_dense(a, "fc2", x, 4096, true);
    x = qf_arch_relu(a, "relu7", x);
    x = qf_arch_dropout(a, "dropout2", x, 0.5f);
    x = qf_arch_dense(a, "fc3", x, classes, true);
    return qf_arch_softmax(a, "softmax", x);
}

qf_status qf_arch_build(const char *name, int64_t num_classes, int64_t in_ch, uint64_t seed,
                        qf_graph **out, qf_err *err) {
    if (out) *out = NULL;
    const qf_arch_info *info = NULL;
    for (size_t i = 0; name && i < QF_ARRAY_LEN(arch_table); i++)
        if (!strcmp(name, arch_table[i].name)) info = &arch_table[i];
    if (!info) {
        char names[256] = "";
        for (size_t i = 0; i < QF_ARRAY_LEN(arch_table); i++) {
            if (i) strncat(names, ", ", sizeof names - strlen(names) - 1);
            strncat(names, arch_table[i].name, sizeof names - strlen(names) - 1);
        }
        return qf_errf(err, QF_ERR_INVALID_ARG, "unknown architecture '%s' (known: %s)",
                       name ? name : "(null)", names);
    }
    if (!out) return qf_errf(err, QF_ERR_INVALID_ARG, "arch: NULL output pointer");
    if (num_classes <= 0) num_classes = info->num_classes;
    if (in_ch <= 0) in_ch = info->in_ch;
    qf_arch *a;
    qf_status s = qf_arch_begin(seed, &a, err);
    if (s) return s;
    int x = qf_arch_input(a, "input", in_ch, info->in_h, info->in_w);
    const char *out_name = "logits";
    if (!strcmp(info->name, "lenet"))
        x = build_lenet(a, x, num_classes, true);
    else if (!strcmp(info->name, "lenet_classic"))
        x = build_lenet(a, x, num_classes, false);
    else if (!strcmp(info->name, "resnet8"))
        x = build_resnet8(a, x, num_classes);
    else if (!strcmp(info->name, "mobilenet_v2_tiny"))
        x = build_mobilenet_v2_tiny(a, x, num_classes);
    else {
        x = build_alexnet(a, x, num_classes);
        out_name = "probabilities";
    }
    qf_arch_output(a, x, out_name);
    s = qf_arch_finish(a, out, err);
    if (s)
        qf_err_prefix(err, "%s", info->name);
    else
        (*out)->name = qf_arena_strdup(&(*out)->arena, info->name);
    return s;
}
